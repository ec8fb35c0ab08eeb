"""Events stored before their district was configured: how they are read back and marked
(pure; the store runs the resolution, `abacus.store.store.Store.resolve_pending`)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from abacus.catalog import EVENTS, PENDING_FACTS
from abacus.events.codec import Event

__all__ = ["PENDING_EVENTS_SQL", "event_from_row", "pending_marks"]

_TIMESTAMP_PAYLOAD = ("started_at",)

# Up to {limit} unresolved pending events of one district, as `event_from_row` reads them.
PENDING_EVENTS_SQL = f"""
SELECT event_id, event_type, district_id, student_id, product, occurred_at, payload
FROM {{db}}.{EVENTS.name} FINAL
WHERE district_id = {{{{d:String}}}} AND event_id IN
    (SELECT event_id FROM {{db}}.{PENDING_FACTS.name} FINAL
     WHERE district_id = {{{{d:String}}}} AND resolved = 0 LIMIT {{limit}})
"""  # noqa: S608 - db and limit are ours; the district is bound


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


def pending_marks(events: Iterable[Event], *, resolved: bool) -> list[list[Any]]:
    """`pending_facts` rows for events: 0 = facts still to derive, 1 = derived (replaces 0)."""
    return [[e["district_id"], e["event_id"], int(resolved)] for e in events]
