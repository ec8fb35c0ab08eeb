"""Pure ingest processing: Kafka records in, rows to store and dead letters out (no I/O)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

import orjson

from abacus.catalog import EVENTS
from abacus.errors import InvalidEventError
from abacus.events.codec import Event, decode_record
from abacus.events.reasons import cap, reject, unexpected
from abacus.events.validate import validate_event

__all__ = [
    "COMMON_FIELDS",
    "EVENT_COLUMNS",
    "DeadLetter",
    "IngestBatch",
    "RawRecord",
    "SourceRecord",
    "batch_reason",
    "process_raw",
    "process_records",
]

COMMON_FIELDS = ("event_id", "event_type", "occurred_at", "district_id", "student_id", "product")
EVENT_COLUMNS = EVENTS.columns
# (partition, offset, key, value): what an ingest process gets of a Kafka record.
RawRecord = tuple[int, int, bytes | None, bytes | None]
S = TypeVar("S")  # how a batch names its records: SourceRecord, or RawRecord in ingest


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
class DeadLetter(Generic[S]):
    """A record the stream could not (fully) accept, with the reason."""

    source: S
    reason: str


@dataclass
class IngestBatch(Generic[S]):
    """What one batch of records becomes: event rows, dead letters and counters.

    ``events``, ``rows`` and ``sources`` are aligned: the i-th event, its row, its record.
    """

    rows: list[tuple[Any, ...]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    sources: list[S] = field(default_factory=list)
    dead_letters: list[DeadLetter[S]] = field(default_factory=list)
    accepted: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    duplicates_in_batch: int = 0


def process_records(
    records: Iterable[SourceRecord], *, now: datetime, epoch: str = ""
) -> IngestBatch[SourceRecord]:
    """`process_raw` on whole records: the batch's sources and dead letters name them."""
    return _process(((r, r.partition, r.offset, r.key, r.value) for r in records), now, epoch)


def process_raw(
    records: Iterable[RawRecord], *, now: datetime, epoch: str = ""
) -> IngestBatch[RawRecord]:
    """Decode and validate every record; good events become rows, bad records dead letters.

    This is the per-record boundary: whatever a record's bytes do to the decoder, the
    validator or the row builder, it becomes that record's dead letter (an unexpected
    exception as ``internal_error``, named by class); nothing raised for one record
    escapes to stop the batch. A batch record with some bad events keeps its good events
    and is also dead-lettered whole (with the index of the first bad event): replaying it
    later is harmless because every event counts once by event_id. ``epoch`` is the
    broker epoch the records were read in (stored with each event's partition and offset).
    The batch names each record by its own tuple (no object is built per record).
    """
    return _process(((r, r[0], r[1], r[2], r[3]) for r in records), now, epoch)


def _process(
    records: Iterable[tuple[S, int, int, bytes | None, bytes | None]], now: datetime, epoch: str
) -> IngestBatch[S]:
    batch: IngestBatch[S] = IngestBatch()
    seen: set[str] = set()
    for record, partition, offset, raw_key, value in records:
        try:
            decoded = decode_record(value)
        except InvalidEventError as exc:
            batch.dead_letters.append(DeadLetter(record, exc.reason))
            batch.rejected[exc.label] += 1
            continue
        except Exception as exc:  # noqa: BLE001 - the per-record boundary (see docstring)
            error = unexpected(exc, "decoding")
            batch.dead_letters.append(DeadLetter(record, error.reason))
            batch.rejected[error.label] += 1
            continue
        problems = []
        key = raw_key.decode("utf-8", "replace") if raw_key is not None else None
        for index, raw in enumerate(decoded):
            try:
                event = validate_event(raw, now=now)
                if key is not None and event["student_id"] != key:
                    raise reject("key_mismatch", "record key does not match field student_id")
                if event["event_id"] in seen:
                    batch.duplicates_in_batch += 1
                    continue
                row = _row(event, partition, offset, epoch)
            except InvalidEventError as exc:
                problems.append((index, exc.reason))
                batch.rejected[exc.label] += 1
                continue
            except Exception as exc:  # noqa: BLE001 - the per-record boundary (see docstring)
                error = unexpected(exc, "validating")
                problems.append((index, error.reason))
                batch.rejected[error.label] += 1
                continue
            seen.add(event["event_id"])
            batch.events.append(event)
            batch.rows.append(row)
            batch.sources.append(record)
            batch.accepted[event["event_type"]] += 1
        if problems:
            batch.dead_letters.append(DeadLetter(record, batch_reason(problems, len(decoded))))
    return batch


def batch_reason(problems: list[tuple[int, str]], events: int) -> str:
    """One reason for a record: the first bad event's, then where it is in a batch record
    (``out_of_range: field score_percent outside 0-100 (event 4 of 8, +1 more)``)."""
    index, reason = problems[0]
    more = f", +{len(problems) - 1} more" if len(problems) > 1 else ""
    where = f" (event {index + 1} of {events}{more})" if events > 1 else ""
    return cap(f"{reason[: 180 - len(where)]}{where}")


def _row(event: Event, partition: int, offset: int, epoch: str) -> tuple[Any, ...]:
    payload = event.copy()  # what the columns do not hold: every event has them all
    for key in COMMON_FIELDS:
        del payload[key]
    return (
        event["district_id"],
        event["student_id"],
        event["event_id"],
        event["event_type"],
        event["product"],
        event["occurred_at"],
        orjson.dumps(payload, default=_epoch_ms, option=_PAYLOAD_OPTIONS).decode(),
        partition,
        offset,
        epoch,
    )


# Keys sorted; datetimes (started_at) through `_epoch_ms`, as epoch milliseconds.
_PAYLOAD_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME


def _epoch_ms(value: Any) -> int:
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
