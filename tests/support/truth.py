"""An independent, obviously-correct reference for aggregates, computed from produced events.

Deliberately written differently from the product: no shared helpers, brute-force
intersection of each session with every local day's three segments.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

GRADE_RANKS = {g: i for i, g in enumerate(["PK", "K", *map(str, range(1, 13))], start=1)}
METRICS = (
    "school_ms",
    "evening_ms",
    "lessons_started",
    "pre_quiz_sum",
    "pre_quiz_count",
    "post_quiz_sum",
    "post_quiz_count",
    "problems",
    "points",
    "tokens",
    "math_helps",
    "live_helps",
)


def unique_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for e in events:
        seen.setdefault(e["event_id"], e)
    return list(seen.values())


def _utc(d: date, t: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(d, t, tzinfo=zone).astimezone(UTC)


def _ms(a: datetime, b: datetime) -> int:
    delta = b - a
    return (delta.days * 86_400_000) + delta.seconds * 1000 + delta.microseconds // 1000


def split_reference(start: datetime, end: datetime, zone: ZoneInfo) -> dict[date, list[int]]:
    out: dict[date, list[int]] = {}
    day = start.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date() + timedelta(days=1)
    while day <= last:
        midnight = _utc(day, time(0), zone)
        seven = _utc(day, time(7), zone)
        four = _utc(day, time(16), zone)
        next_midnight = _utc(day + timedelta(days=1), time(0), zone)
        weekday = day.weekday() < 5
        for lo, hi, school in (
            (midnight, seven, False),
            (seven, four, weekday),
            (four, next_midnight, False),
        ):
            a, b = max(lo, start), min(hi, end)
            if a < b:
                bucket = out.setdefault(day, [0, 0])
                bucket[0 if school else 1] += _ms(a, b)
        day += timedelta(days=1)
    return out


def daily_truth(events: list[dict[str, Any]], tz: str) -> dict[tuple[str, date], dict[str, float]]:
    zone = ZoneInfo(tz)
    out: dict[tuple[str, date], dict[str, float]] = defaultdict(lambda: dict.fromkeys(METRICS, 0))
    for e in unique_events(events):
        sid, kind = e["student_id"], e["event_type"]
        day = e["occurred_at"].astimezone(zone).date()
        if kind == "session_ended":
            for d, (school, evening) in split_reference(
                e["started_at"], e["occurred_at"], zone
            ).items():
                out[(sid, d)]["school_ms"] += school
                out[(sid, d)]["evening_ms"] += evening
        elif kind == "lesson_started":
            out[(sid, day)]["lessons_started"] += 1
        elif kind == "quiz_submitted":
            out[(sid, day)][f"{e['quiz_kind']}_quiz_sum"] += e["score_percent"]
            out[(sid, day)][f"{e['quiz_kind']}_quiz_count"] += 1
        elif kind == "problem_attempted":
            out[(sid, day)]["problems"] += 1
        elif kind == "points_earned":
            out[(sid, day)]["points"] += e["points"]
        elif kind == "token_earned":
            out[(sid, day)]["tokens"] += e["tokens"]
        elif kind == "math_help_used":
            out[(sid, day)]["math_helps"] += 1
        elif kind == "live_help_session":
            out[(sid, day)]["live_helps"] += 1
    return dict(out)


def passes_truth(events: list[dict[str, Any]], tz: str) -> dict[str, list[tuple[date, str, str]]]:
    """Per student: (local pass date, 'pre'|'post'|'complete', lesson grade) per passed attempt."""
    zone = ZoneInfo(tz)
    order = {"lesson_started": 0, "quiz_submitted": 1, "lesson_completed": 2}
    by_lesson: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for e in unique_events(events):
        if e["event_type"] in order:
            by_lesson[(e["student_id"], e["lesson_id"])].append(e)
    out: dict[str, list[tuple[date, str, str]]] = defaultdict(list)
    for (sid, _), items in by_lesson.items():
        items.sort(
            key=lambda e: (
                e["occurred_at"],
                order[e["event_type"]],
                0 if e.get("quiz_kind") == "pre" else 1,
            )
        )
        attempt_passed = False
        for e in items:
            if e["event_type"] == "lesson_started":
                attempt_passed = False
                continue
            if attempt_passed:
                continue
            if e["event_type"] == "quiz_submitted":
                threshold = 80 if e["quiz_kind"] == "pre" else 70
                ok = e["product"] == "g3plus" and e["score_percent"] >= threshold
                how = e["quiz_kind"]
            else:
                ok = (
                    e["product"] == "prek2"
                    and e["tokens_available"] > 0
                    and (e["tokens_collected"] == e["tokens_available"])
                )
                how = "complete"
            if ok:
                attempt_passed = True
                out[sid].append(
                    (e["occurred_at"].astimezone(zone).date(), how, e["lesson_grade_level"])
                )
    return {k: sorted(v) for k, v in out.items()}


def monthly_truth(
    daily: dict[tuple[str, date], dict[str, float]],
    passes: dict[str, list[tuple[date, str, str]]],
) -> dict[tuple[str, date], tuple[dict[str, float], list[tuple[str, int, int]]]]:
    """Per student and calendar month: the daily sums added up, and the month's passes as
    (ISO date, 1 if by pre-quiz else 0, the lesson grade's rank PK=1 .. 12=14), sorted."""
    out: dict[tuple[str, date], tuple[dict[str, float], list[tuple[str, int, int]]]] = {}
    for (sid, day), metrics in daily.items():
        sums, _ = out.setdefault((sid, day.replace(day=1)), (dict.fromkeys(METRICS, 0), []))
        for name, value in metrics.items():
            sums[name] += value
    for sid, items in passes.items():
        for day, how, grade in items:
            _, month = out.setdefault((sid, day.replace(day=1)), (dict.fromkeys(METRICS, 0), []))
            month.append((day.isoformat(), int(how == "pre"), GRADE_RANKS[grade]))
    return {k: (sums, sorted(p)) for k, (sums, p) in out.items() if any(sums.values()) or p}
