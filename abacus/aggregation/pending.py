"""Facts for events that arrived before their district was configured (blocking I/O)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from abacus.aggregation.derive import (
    BENCHMARK_COLUMNS,
    DAILY_COLUMNS,
    LESSON_COLUMNS,
    derive_facts,
)
from abacus.events.codec import Event
from abacus.store.writer import BlockWriter

__all__ = ["PENDING_COLUMNS", "event_from_row", "resolve_pending"]

log = logging.getLogger(__name__)
PENDING_COLUMNS = ("district_id", "event_id", "resolved")
_CHUNK = 50_000
_TIMESTAMP_PAYLOAD = ("started_at",)


def event_from_row(row: tuple[Any, ...]) -> Event:
    """Rebuild an event from (event_id, event_type, district, student, product, occurred_at,
    payload) as stored in `events`."""
    event_id, event_type, district_id, student_id, product, occurred_at, payload = row
    event: Event = {
        "event_id": str(event_id),
        "event_type": event_type,
        "district_id": district_id,
        "student_id": student_id,
        "product": product,
        "occurred_at": occurred_at.replace(tzinfo=UTC)
        if occurred_at.tzinfo is None
        else occurred_at,
    }
    for key, value in json.loads(payload).items():
        if key in _TIMESTAMP_PAYLOAD:
            value = datetime.fromtimestamp(value / 1000, tz=UTC)
        event[key] = value
    return event


def resolve_pending(
    writer: BlockWriter, district_id: str, timezone_of: Callable[[Event], str]
) -> int:
    """Derive and store facts of every pending event of ``district_id``; returns how many.

    Safe to interrupt and run again: facts are idempotent rows and an event is marked
    resolved only after its facts are stored.
    """
    db = writer.database
    total = 0
    while True:
        rows = writer.client.query(
            f"SELECT event_id, event_type, district_id, student_id, product, occurred_at, payload "  # noqa: S608
            f"FROM {db}.events FINAL WHERE district_id = {{d:String}} AND event_id IN "
            f"(SELECT event_id FROM {db}.pending_facts FINAL "
            f" WHERE district_id = {{d:String}} AND resolved = 0 LIMIT {_CHUNK})",
            parameters={"d": district_id},
        ).result_rows
        if not rows:
            return total
        events = [event_from_row(r) for r in rows]
        facts = derive_facts(events, timezone_of)
        writer.insert("daily_facts", facts.daily, DAILY_COLUMNS)
        writer.insert("lesson_facts", facts.lessons, LESSON_COLUMNS)
        writer.insert("benchmark_facts", facts.benchmarks, BENCHMARK_COLUMNS)
        writer.insert(
            "pending_facts",
            [[district_id, e["event_id"], 1] for e in events],
            PENDING_COLUMNS,
        )
        total += len(events)
        log.info("derived facts for %d pending event(s) of a newly configured district", total)
