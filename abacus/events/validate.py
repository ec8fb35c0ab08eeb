"""Semantic checks on decoded events: the ranges and relations Avro types cannot express."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from abacus.domain.grades import normalize_grade
from abacus.events.codec import Event
from abacus.events.reasons import reject

__all__ = ["MAX_FUTURE_SKEW", "MAX_SESSION", "validate_event"]

MAX_SESSION = timedelta(hours=24)
MAX_FUTURE_SKEW = timedelta(hours=24)
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
_GRADE_FIELDS = ("lesson_grade_level", "instructional_level")
_NON_NEGATIVE = ("tokens_collected", "tokens_available", "tokens", "points")


def validate_event(event: Event, *, now: datetime) -> Event:
    """Return the event with grades normalised, or raise InvalidEventError with the reason."""
    if not _UUID.fullmatch(event["event_id"]):
        raise reject("out_of_range", "field event_id is not a UUID")
    for key in ("district_id", "student_id"):
        value = event[key]
        if not value or len(value) > 64 or not value.isascii() or not value.isprintable():
            raise reject("out_of_range", f"field {key} must be 1-64 printable ASCII characters")
    occurred: datetime = event["occurred_at"]
    if occurred > now + MAX_FUTURE_SKEW:
        raise reject("future_timestamp", "field occurred_at is more than 24 h in the future")
    if occurred < _EARLIEST:
        raise reject("out_of_range", "field occurred_at is before 2000-01-01")
    out = dict(event)
    out["event_id"] = event["event_id"].lower()  # one spelling per id: dedup keys must match
    for key in _GRADE_FIELDS:
        if key in out:
            try:
                out[key] = normalize_grade(str(out[key]))
            except ValueError as exc:
                raise reject("out_of_range", f"field {key} is not a grade (PK, K, 1-12)") from exc
    for key in _NON_NEGATIVE:
        if key in out and out[key] < 0:
            raise reject("out_of_range", f"field {key} is negative")
    _check_type_rules(out)
    return out


def _check_type_rules(event: Event) -> None:
    kind = event["event_type"]
    if kind == "session_ended":
        duration = event["occurred_at"] - event["started_at"]
        if duration < timedelta(0):
            raise reject("out_of_range", "field started_at is after occurred_at")
        if duration > MAX_SESSION:
            raise reject("out_of_range", "field started_at: session longer than 24 h")
    elif kind == "quiz_submitted":
        if not 0 <= event["score_percent"] <= 100:
            raise reject("out_of_range", "field score_percent outside 0-100")
    elif kind == "lesson_completed":
        if event["tokens_collected"] > event["tokens_available"]:
            raise reject("out_of_range", "field tokens_collected exceeds tokens_available")
    elif kind == "benchmark_completed":
        if event["benchmark_number"] not in (1, 2, 3):
            raise reject("out_of_range", "field benchmark_number must be 1, 2 or 3")
        rank = event.get("percentile_rank")
        if rank is not None and not 1 <= rank <= 99:
            raise reject("out_of_range", "field percentile_rank outside 1-99")
