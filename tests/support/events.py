"""Valid sample events of every type, for contract and pipeline tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas import EVENT_TYPES

BASE_TIME = datetime(2026, 10, 5, 14, 30, tzinfo=UTC)  # a Monday, 09:30 in Chicago

_SPECIFIC: dict[str, dict[str, Any]] = {
    "session_started": {"session_id": "sess-1"},
    "session_ended": {"session_id": "sess-1", "started_at": BASE_TIME - timedelta(minutes=25)},
    "lesson_started": {"lesson_id": "L-12", "lesson_grade_level": "4"},
    "quiz_submitted": {
        "lesson_id": "L-12",
        "lesson_grade_level": "4",
        "quiz_kind": "pre",
        "score_percent": 85.0,
    },
    "lesson_completed": {
        "lesson_id": "L-12",
        "lesson_grade_level": "4",
        "tokens_collected": 5,
        "tokens_available": 5,
    },
    "problem_attempted": {"lesson_id": "L-12", "correct": True},
    "token_earned": {"lesson_id": "L-12", "tokens": 3},
    "points_earned": {"points": 120},
    "math_help_used": {"lesson_id": "L-12"},
    "live_help_session": {"lesson_id": "L-12"},
    "benchmark_completed": {
        "benchmark_number": 1,
        "quantile_measure": -150,
        "instructional_level": "3",
        "percentile_rank": 42,
    },
}


def sample_event(event_type: str, **overrides: Any) -> dict[str, Any]:
    """A valid event of ``event_type`` with a fresh event_id; override any field."""
    event: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "occurred_at": BASE_TIME,
        "district_id": "maple-valley",
        "student_id": "S1001",
        "product": "g3plus",
        **_SPECIFIC[event_type],
    }
    event.update(overrides)
    return event


def one_of_each(**overrides: Any) -> list[dict[str, Any]]:
    return [sample_event(t, **overrides) for t in EVENT_TYPES]
