"""Pure ingest processing: Kafka records in, rows to store and dead letters out (no I/O)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from abacus.catalog import EVENTS
from abacus.errors import InvalidEventError
from abacus.events.codec import Event, decode_record
from abacus.events.validate import validate_event

__all__ = [
    "COMMON_FIELDS",
    "EVENT_COLUMNS",
    "REJECT_REASONS",
    "DeadLetter",
    "IngestBatch",
    "SourceRecord",
    "process_records",
]

COMMON_FIELDS = ("event_id", "event_type", "occurred_at", "district_id", "student_id", "product")
EVENT_COLUMNS = EVENTS.columns


@dataclass(frozen=True)
class SourceRecord:
    """One Kafka record as it arrived, kept whole so a dead letter loses nothing."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int | None = None  # the record's Kafka timestamp (producer create time)


@dataclass(frozen=True)
class DeadLetter:
    """A record the stream could not (fully) accept, with the reason."""

    source: SourceRecord
    reason: str


@dataclass
class IngestBatch:
    """What one batch of records becomes: event rows, dead letters and counters."""

    rows: list[tuple[Any, ...]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    accepted: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    duplicates_in_batch: int = 0


def process_records(records: Iterable[SourceRecord], *, now: datetime) -> IngestBatch:
    """Decode and validate every record; good events become rows, bad records dead letters.

    A batch record with some bad events keeps its good events and is also dead-lettered
    whole (with the index of the first bad event): replaying it later is harmless because
    every event counts once by event_id.
    """
    batch = IngestBatch()
    seen: set[str] = set()
    for record in records:
        try:
            decoded = decode_record(record.value)
        except InvalidEventError as exc:
            batch.dead_letters.append(DeadLetter(record, exc.reason))
            batch.rejected[_reason_class(exc.reason)] += 1
            continue
        problems = []
        key = record.key.decode("utf-8", "replace") if record.key is not None else None
        for index, raw in enumerate(decoded):
            try:
                event = validate_event(raw, now=now)
                if key is not None and event["student_id"] != key:
                    raise InvalidEventError("record key does not match student_id")
            except InvalidEventError as exc:
                problems.append((index, exc.reason))
                batch.rejected[_reason_class(exc.reason)] += 1
                continue
            if event["event_id"] in seen:
                batch.duplicates_in_batch += 1
                continue
            seen.add(event["event_id"])
            batch.events.append(event)
            batch.rows.append(_row(event, record))
            batch.accepted[event["event_type"]] += 1
        if problems:
            index, reason = problems[0]
            where = f"event {index + 1} of {len(decoded)}: " if len(decoded) > 1 else ""
            more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
            batch.dead_letters.append(DeadLetter(record, f"{where}{reason}{more}"))
    return batch


def _row(event: Event, record: SourceRecord) -> tuple[Any, ...]:
    payload = {
        k: _epoch_ms(v) if isinstance(v, datetime) else v
        for k, v in event.items()
        if k not in COMMON_FIELDS
    }
    return (
        event["district_id"],
        event["student_id"],
        event["event_id"],
        event["event_type"],
        event["product"],
        event["occurred_at"],
        orjson.dumps(payload, option=orjson.OPT_SORT_KEYS).decode(),
        record.partition,
        record.offset,
    )


def _epoch_ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


_REASON_NEEDLES = (
    ("undecodable", "undecodable"),
    ("unknown_fingerprint", "fingerprint"),
    ("schema_mismatch", "schema"),
    ("unknown_type", "unknown event type"),
    ("missing_field", "missing field"),
    ("invalid_json", "JSON"),
    ("future_timestamp", "future"),
    ("key_mismatch", "record key"),
)
# Every value of the `reason` label of abacus_events_rejected_total.
REJECT_REASONS: tuple[str, ...] = (*(label for label, _ in _REASON_NEEDLES), "out_of_range")


def _reason_class(reason: str) -> str:
    """A short, bounded label for metrics (reasons themselves carry values)."""
    for label, needle in _REASON_NEEDLES:
        if needle in reason:
            return label
    return "out_of_range"
