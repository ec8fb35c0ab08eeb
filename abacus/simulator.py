"""A realistic simulated school year of app events for a roster (deterministic per seed).

School days get a session in school hours (some crossing 16:00), some evenings get a
session (some crossing midnight), some weekend days too. Each session holds lessons:
Grade 3+ lessons have a pre-quiz (>= 80 passes the lesson) else problems, helps and a
post-quiz; PreK-2 lessons collect tokens and complete. Failed lessons are retaken later.
Three benchmark windows per year. Duplicates and late deliveries come in configurable shares.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from abacus.domain.grades import GRADES, grade_rank, product_for_grade
from abacus.events.codec import Event

__all__ = ["SimStudent", "SimulationConfig", "simulate"]

_BENCHMARK_MONTHS = {1: (9, 10), 2: (1, 1), 3: (5, 5)}  # test number -> (month, month)


@dataclass(frozen=True)
class SimStudent:
    """A rostered student as the simulator needs them."""

    student_id: str
    grade: str

    @property
    def product(self) -> str:
        return product_for_grade(self.grade)


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate; shares are probabilities in 0..1."""

    district_id: str
    timezone: str
    start: date
    end: date
    seed: int = 7
    school_session_share: float = 0.8
    evening_share: float = 0.25
    weekend_share: float = 0.15
    duplicate_share: float = 0.0
    late_share: float = 0.0
    benchmarks: bool = True


def simulate(students: list[SimStudent], config: SimulationConfig) -> list[Event]:
    """Every event, in delivery order (late ones moved to the end, duplicates repeated)."""
    rng = random.Random(config.seed)  # noqa: S311 - a reproducible simulation, not a secret
    zone = ZoneInfo(config.timezone)
    produced: list[Event] = []
    for student in students:
        sim = _StudentSim(student, config, zone, rng)
        produced.extend(sim.run())
    return _deliver(produced, config, rng)


def _deliver(events: list[Event], config: SimulationConfig, rng: random.Random) -> list[Event]:
    on_time: list[Event] = []
    late: list[Event] = []
    for event in events:
        (late if rng.random() < config.late_share else on_time).append(event)
        if rng.random() < config.duplicate_share:
            on_time.append(dict(event))  # a producer retry: same event_id, same content
    rng.shuffle(late)
    return on_time + late


class _StudentSim:
    def __init__(
        self, student: SimStudent, config: SimulationConfig, zone: ZoneInfo, rng: random.Random
    ) -> None:
        self.student = student
        self.config = config
        self.zone = zone
        self.rng = rng
        self.next_lesson = 1
        self.to_retake: list[tuple[str, str]] = []

    def run(self) -> Iterator[Event]:
        day = self.config.start
        bench_days = self._benchmark_days()
        while day <= self.config.end:
            weekday = day.weekday() < 5
            if weekday and self.rng.random() < self.config.school_session_share:
                start = self._local(day, time(8, 0)) + timedelta(minutes=self.rng.randrange(0, 480))
                yield from self._session(start, bench=bench_days.get(day))
            elif day in bench_days:
                yield from self._session(self._local(day, time(9, 30)), bench=bench_days[day])
            if self.rng.random() < (
                self.config.evening_share if weekday else self.config.weekend_share
            ):
                hour = self.rng.randrange(17, 24) if weekday else self.rng.randrange(9, 22)
                start = self._local(day, time(hour, self.rng.randrange(0, 60)))
                yield from self._session(start, bench=None)
            day += timedelta(days=1)

    def _benchmark_days(self) -> dict[date, int]:
        if not self.config.benchmarks:
            return {}
        out: dict[date, int] = {}
        for number, (month, _) in _BENCHMARK_MONTHS.items():
            for year in (self.config.start.year, self.config.end.year):
                first = date(year, month, 1)
                candidate = first + timedelta(days=self.rng.randrange(0, 20))
                while candidate.weekday() >= 5:
                    candidate += timedelta(days=1)
                if self.config.start <= candidate <= self.config.end and number not in out.values():
                    out[candidate] = number
        return out

    def _local(self, day: date, at: time) -> datetime:
        return datetime.combine(day, at, tzinfo=self.zone).astimezone(UTC)

    def _event(self, event_type: str, at: datetime, **fields: object) -> Event:
        return {
            "event_id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            "event_type": event_type,
            "occurred_at": at.replace(microsecond=(at.microsecond // 1000) * 1000),
            "district_id": self.config.district_id,
            "student_id": self.student.student_id,
            "product": self.student.product,
            **fields,
        }

    def _session(self, start: datetime, bench: int | None) -> Iterator[Event]:
        session_id = f"s-{self.rng.getrandbits(48):012x}"
        start = start.replace(microsecond=0)
        yield self._event("session_started", start, session_id=session_id)
        now = start + timedelta(seconds=self.rng.randrange(5, 60))
        if bench is not None:
            yield self._benchmark(now, bench)
            now += timedelta(minutes=self.rng.randrange(20, 40))
        for _ in range(self.rng.randrange(1, 4)):
            now, events = self._lesson(now)
            yield from events
        end = now + timedelta(seconds=self.rng.randrange(10, 300))
        yield self._event("session_ended", end, session_id=session_id, started_at=start)

    def _benchmark(self, at: datetime, number: int) -> Event:
        rank = grade_rank(self.student.grade)
        quantile = rank * 110 + self.rng.randrange(-250, 250)
        percentile = None if self.student.grade == "PK" else self.rng.randrange(1, 100)
        level = GRADES[max(0, min(len(GRADES) - 1, rank + 1 + self.rng.randrange(-1, 2)))]
        return self._event(
            "benchmark_completed",
            at,
            benchmark_number=number,
            quantile_measure=quantile,
            instructional_level=level,
            percentile_rank=percentile,
        )

    def _lesson(self, now: datetime) -> tuple[datetime, list[Event]]:
        rng = self.rng
        if self.to_retake and rng.random() < 0.5:
            lesson_id, grade = self.to_retake.pop(0)
        else:
            lesson_id = f"{self.student.student_id}-L{self.next_lesson}"
            self.next_lesson += 1
            rank = grade_rank(self.student.grade) + rng.choice((-1, 0, 0, 0, 1))
            grade = GRADES[max(0, min(len(GRADES) - 1, rank + 1))]
        g3 = self.student.product == "g3plus"
        out = [self._event("lesson_started", now, lesson_id=lesson_id, lesson_grade_level=grade)]

        def step(lo: int, hi: int) -> datetime:
            nonlocal now
            now += timedelta(seconds=rng.randrange(lo, hi))
            return now

        def quiz(kind: str, lowest: int) -> float:
            score = float(rng.randrange(lowest, 101))
            out.append(
                self._event(
                    "quiz_submitted",
                    step(60, 300),
                    lesson_id=lesson_id,
                    lesson_grade_level=grade,
                    quiz_kind=kind,
                    score_percent=score,
                )
            )
            return score

        passed = False
        if g3:
            passed = quiz("pre", 20) >= 80
        if not passed:
            for _ in range(rng.randrange(2, 8)):
                out.append(
                    self._event(
                        "problem_attempted",
                        step(20, 120),
                        lesson_id=lesson_id,
                        correct=rng.random() < 0.7,
                    )
                )
                if g3 and rng.random() < 0.15:
                    out.append(self._event("math_help_used", step(5, 30), lesson_id=lesson_id))
                if not g3 and rng.random() < 0.6:
                    out.append(
                        self._event(
                            "token_earned",
                            step(5, 20),
                            lesson_id=lesson_id,
                            tokens=rng.randrange(1, 4),
                        )
                    )
            if g3 and rng.random() < 0.05:
                out.append(self._event("live_help_session", step(60, 600), lesson_id=lesson_id))
            if g3:
                passed = quiz("post", 30) >= 70
            else:
                available = rng.randrange(3, 8)
                collected = available if rng.random() < 0.7 else rng.randrange(0, available)
                out.append(
                    self._event(
                        "lesson_completed",
                        step(10, 60),
                        lesson_id=lesson_id,
                        lesson_grade_level=grade,
                        tokens_collected=collected,
                        tokens_available=available,
                    )
                )
                passed = collected == available
        if g3:
            out.append(self._event("points_earned", step(1, 5), points=rng.randrange(10, 200)))
        if not passed:
            self.to_retake.append((lesson_id, grade))
        return now, out
