"""Pure derivation: validated events → idempotent fact rows keyed by event_id (no I/O).

Every fact row carries the event_id (and a piece number for sessions split across local
days), and the fact tables are ReplacingMergeTrees on that key: writing the same event
twice, or replaying a batch after a crash, leaves the aggregates unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from abacus.aggregation.rollups import RollupKeys
from abacus.catalog import BENCHMARK_FACTS, DAILY_FACTS, LESSON_FACTS, Table
from abacus.domain.passing import prek2_completion_passes, quiz_passes
from abacus.domain.timesplit import split_interval
from abacus.events.codec import Event

__all__ = [
    "DAILY_COLUMNS",
    "DerivedFacts",
    "derive_event",
    "derive_facts",
]

DAILY_COLUMNS = DAILY_FACTS.columns
_METRIC = {name: i for i, name in enumerate(DAILY_COLUMNS)}
_ZERO_METRICS = [0, 0, 0, 0.0, 0, 0.0, 0, 0, 0, 0, 0, 0]


@dataclass
class DerivedFacts:
    """Rows for `daily_facts`, `lesson_facts` and `benchmark_facts`."""

    daily: list[list[Any]] = field(default_factory=list)
    lessons: list[list[Any]] = field(default_factory=list)
    benchmarks: list[list[Any]] = field(default_factory=list)

    def by_table(self) -> list[tuple[Table, list[list[Any]]]]:
        """Each fact table with its rows (in the catalog's column order), in storing order."""
        return [
            (DAILY_FACTS, self.daily),
            (LESSON_FACTS, self.lessons),
            (BENCHMARK_FACTS, self.benchmarks),
        ]

    def rollup_keys(self) -> RollupKeys:
        """The rollup keys these facts touch (abacus.aggregation.rollups)."""
        return RollupKeys.of_rows(self.daily, self.lessons)


def derive_facts(events: Iterable[Event], timezone_of: Callable[[Event], str]) -> DerivedFacts:
    """Turn events into fact rows; ``timezone_of`` gives the IANA zone of an event's school."""
    out = DerivedFacts()
    zones: dict[str, ZoneInfo] = {}
    for event in events:
        tz_name = timezone_of(event)
        zone = zones.get(tz_name) or zones.setdefault(tz_name, ZoneInfo(tz_name))
        derive_event(event, zone, out)
    return out


def derive_event(event: Event, zone: ZoneInfo, out: DerivedFacts) -> None:
    """Append one event's fact rows to ``out`` (its local days counted in ``zone``)."""
    local_day = event["occurred_at"].astimezone(zone).date()
    kind = event["event_type"]
    if kind == "session_ended":
        pieces = split_interval(event["started_at"], event["occurred_at"], zone)
        for piece, usage in enumerate(pieces):
            row = _daily(event, usage.local_date, piece)
            row[_METRIC["school_ms"]] = usage.school_ms
            row[_METRIC["evening_ms"]] = usage.evening_ms
            out.daily.append(row)
        return
    metric = _SIMPLE.get(kind)
    if metric is not None:
        row = _daily(event, local_day, 0)
        name, value = metric(event)
        row[_METRIC[name]] = value
        if kind == "quiz_submitted":
            row[_METRIC[f"{event['quiz_kind']}_quiz_count"]] = 1
        out.daily.append(row)
    if kind in _LESSON_KINDS:
        out.lessons.append(_lesson(event, local_day))
    elif kind == "benchmark_completed":
        out.benchmarks.append(_benchmark(event, local_day))


def _benchmark(event: Event, local_day: date) -> list[Any]:
    return [
        event["district_id"],
        event["student_id"],
        event["event_id"],
        event["occurred_at"],
        local_day,
        event["benchmark_number"],
        event["quantile_measure"],
        event["instructional_level"],
        event.get("percentile_rank"),
    ]


def _daily(event: Event, local_day: date, piece: int) -> list[Any]:
    return [
        event["district_id"],
        event["student_id"],
        local_day,
        event["event_id"],
        piece,
        event["product"],
        event["occurred_at"],
        *_ZERO_METRICS,
    ]


_SIMPLE: dict[str, Callable[[Event], tuple[str, Any]]] = {
    "lesson_started": lambda e: ("lessons_started", 1),
    "quiz_submitted": lambda e: (f"{e['quiz_kind']}_quiz_sum", float(e["score_percent"])),
    "problem_attempted": lambda e: ("problems", 1),
    "points_earned": lambda e: ("points", e["points"]),
    "token_earned": lambda e: ("tokens", e["tokens"]),
    "math_help_used": lambda e: ("math_helps", 1),
    "live_help_session": lambda e: ("live_helps", 1),
}
_LESSON_KINDS = {"lesson_started": "start", "quiz_submitted": None, "lesson_completed": "complete"}


def _lesson(event: Event, local_day: date) -> list[Any]:
    kind = event["event_type"]
    passed = False
    if kind == "lesson_started":
        label = "start"
    elif kind == "quiz_submitted":
        label = event["quiz_kind"]
        passed = event["product"] == "g3plus" and quiz_passes(label, event["score_percent"])
    else:
        label = "complete"
        passed = event["product"] == "prek2" and prek2_completion_passes(
            event["tokens_collected"], event["tokens_available"]
        )
    return [
        event["district_id"],
        event["student_id"],
        event["lesson_id"],
        event["occurred_at"],
        event["event_id"],
        local_day,
        label,
        int(passed),
        event["lesson_grade_level"],
        event["product"],
    ]
