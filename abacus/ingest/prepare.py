"""One batch of Kafka records → encoded insert blocks, dead letters and counters (no I/O).

This is all the work ingest does between fetching and storing: decode, validate, derive
facts, encode. It runs in the ingest processes (`streams.ingest_pool`), so the worker's
own process only fetches, stores and commits, and a second core does the Python work.
Everything crossing the process boundary is plain data: tuples in, bytes and counters out.
"""

from __future__ import annotations

import gc
import signal
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import compress
from typing import Any
from zoneinfo import ZoneInfo

from abacus.aggregation.closing import LateKey, late_rows, local_today
from abacus.aggregation.derive import DerivedFacts, derive_event
from abacus.aggregation.pending import pending_marks
from abacus.catalog import DAILY_FACTS, EVENTS, LESSON_FACTS, PENDING_FACTS, Table
from abacus.events.codec import Event
from abacus.events.processing import IngestBatch, RawRecord, process_raw
from abacus.events.reasons import reject, unexpected
from abacus.lifecycle import die_with_parent
from abacus.privacy.deny import BatchDeny, batch_denies
from abacus.store.native import (
    EncodedBlock,
    NativeEncoder,
    TableTypes,
    without_dataframe_libraries,
)

__all__ = [
    "STORED_TABLES",
    "PreparedBatch",
    "RawRecord",
    "prepare_batch",
    "prepare_in_process",
    "start_process",
]

# Tables a prepared batch writes, in the order they are stored.
STORED_TABLES = (EVENTS.name, *(t.name for t, _ in DerivedFacts().by_table()), PENDING_FACTS.name)


@dataclass
class PreparedBatch:
    """What one batch becomes: Native blocks to insert, dead letters and counters."""

    blocks: list[EncodedBlock] = field(default_factory=list)
    # (partition, offset, reason) of each record to dead-letter
    dead_letters: list[tuple[int, int, str]] = field(default_factory=list)
    accepted: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    duplicates_in_batch: int = 0
    events: int = 0
    # Districts with events stored as pending because no config was known for them.
    pending_districts: set[str] = field(default_factory=set)
    # The rollup keys of its late facts (a day already ended): written before the facts,
    # rebuilt in the background (abacus/aggregation/closing.py).
    late_keys: list[LateKey] = field(default_factory=list)
    # Events dropped because their student (or district) was deleted (the deny-list).
    denied: int = 0


def prepare_batch(
    records: Sequence[RawRecord],
    zones: Mapping[str, str],
    now: datetime,
    encoder: NativeEncoder,
    epoch: str = "",
    *,
    deny: BatchDeny | None = None,
) -> PreparedBatch:
    """Decode, validate, derive and encode a batch.

    ``zones`` maps each configured district to the IANA zone its local days are counted
    in; events of other districts are stored and marked pending, and their facts are
    derived once the district's config arrives. Events of a student or district on the
    deny-list (``deny``: the entries this batch's keys need) are dropped and counted, never
    dead-lettered: a dead letter would keep the data.

    The per-record boundary holds here too: an event whose facts cannot be derived, or
    whose rows do not fit the tables' column types, is dropped from every table and its
    record dead-lettered (``internal_error``); the rest of the batch is stored.
    """
    batch = process_raw(records, now=now, epoch=epoch)
    denied = _drop_denied(batch, deny) if deny else 0
    dead: dict[tuple[int, int], str] = {
        (d.source[0], d.source[1]): d.reason for d in batch.dead_letters
    }
    dropped: set[str] = set()  # event_ids taken out of the batch after validation

    def drop(index: int, reason: str) -> None:
        event, source = batch.events[index], batch.sources[index]
        dropped.add(event["event_id"])
        dead.setdefault((source[0], source[1]), reason)
        batch.accepted[event["event_type"]] -= 1
        batch.rejected["internal_error"] += 1

    facts = DerivedFacts()
    zone_cache: dict[str, ZoneInfo] = {}
    pending: list[Event] = []  # events of districts with no config yet
    for index, event in enumerate(batch.events):
        tz_name = zones.get(event["district_id"])
        if tz_name is None:
            pending.append(event)  # facts follow once the district is configured
            continue
        sizes = (len(facts.daily), len(facts.lessons), len(facts.benchmarks))
        try:
            zone = zone_cache.get(tz_name) or zone_cache.setdefault(tz_name, ZoneInfo(tz_name))
            derive_event(event, zone, facts)
        except Exception as exc:  # noqa: BLE001 - the per-record boundary: this event's bug
            del facts.daily[sizes[0] :], facts.lessons[sizes[1] :], facts.benchmarks[sizes[2] :]
            drop(index, unexpected(exc, "deriving facts").reason)
    tables = [
        (EVENTS, batch.rows),
        *facts.by_table(),
        (PENDING_FACTS, pending_marks(pending, resolved=False)),
    ]
    if dropped:
        tables = [(t, _without(rows, t, dropped)) for t, rows in tables]
    blocks, bad = _encode(encoder, tables)
    while bad:  # the failure path only: drop those events everywhere and encode again
        for event_id in bad:
            index = next(i for i, e in enumerate(batch.events) if e["event_id"] == event_id)
            drop(index, reject("internal_error", "a value does not fit its column").reason)
        tables = [(t, _without(rows, t, dropped)) for t, rows in tables]
        blocks, bad = _encode(encoder, tables)
    if dropped:  # (rarely: no pass over every event otherwise; event ids are unique here)
        pending = [e for e in pending if e["event_id"] not in dropped]
    daily, lessons = (_without(rows, t, dropped) for t, rows in facts.by_table()[:2])
    return PreparedBatch(
        blocks=blocks,
        dead_letters=[(p, o, reason) for (p, o), reason in dead.items()],
        accepted=+batch.accepted,
        rejected=+batch.rejected,
        duplicates_in_batch=batch.duplicates_in_batch,
        events=len(batch.events) - len(dropped),
        pending_districts={e["district_id"] for e in pending},
        late_keys=_late_keys(daily, lessons, zones, now),
        denied=denied,
    )


def _late_keys(
    daily: list[Any], lessons: list[Any], zones: Mapping[str, str], now: datetime
) -> list[LateKey]:
    """The rollup keys of the facts whose local day had ended at ``now``. Every district
    with facts of either kind gets its today: a `lesson_completed` has a lesson fact and no
    daily one, so a batch may hold a district's lesson facts alone (its pass would be left
    out of a lesson rollup built before it, with no key to rebuild it)."""
    daily_at = DAILY_FACTS.columns.index("district_id")
    lesson_at = LESSON_FACTS.columns.index("district_id")
    districts = {row[daily_at] for row in daily} | {row[lesson_at] for row in lessons}
    today = {d: local_today(now, zones[d]) for d in districts if d in zones}
    return list(late_rows(daily, lessons, today))


def _drop_denied(batch: IngestBatch[RawRecord], deny: BatchDeny) -> int:
    """Take denied events out of the batch (its events, rows and sources, in step)."""
    keep = [
        not batch_denies(deny, e["district_id"], e["student_id"], _ms(e["occurred_at"]))
        for e in batch.events
    ]
    dropped = keep.count(False)
    if dropped:
        for event, kept in zip(batch.events, keep, strict=True):
            if not kept:
                batch.accepted[event["event_type"]] -= 1
        batch.events = list(compress(batch.events, keep))
        batch.rows = list(compress(batch.rows, keep))
        batch.sources = list(compress(batch.sources, keep))
        batch.accepted = +batch.accepted
    return dropped


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _without(rows: list[Any], table: Table, event_ids: set[str]) -> list[Any]:
    if not event_ids:
        return rows
    at = table.columns.index("event_id")
    return [row for row in rows if row[at] not in event_ids]


def _encode(
    encoder: NativeEncoder, tables: Sequence[tuple[Table, list[Any]]]
) -> tuple[list[EncodedBlock], list[str]]:
    """Each table's rows as one block, or the event ids whose rows cannot be encoded.

    Validation keeps every value in range, so no row fails in practice; this is the
    safety net that keeps one such event from failing the whole batch. Only when a block
    fails is each of its rows tried alone.
    """
    blocks: list[EncodedBlock] = []
    bad: list[str] = []
    for table, rows in tables:
        if not rows:
            continue
        block = _encodes(encoder, table, rows)
        if block is not None:
            blocks.append(block)
            continue
        at = table.columns.index("event_id")
        for row in rows:
            if _encodes(encoder, table, [row]) is None and row[at] not in bad:
                bad.append(row[at])
    return blocks, bad


def _encodes(encoder: NativeEncoder, table: Table, rows: list[Any]) -> EncodedBlock | None:
    try:
        return encoder.encode(table.name, table.columns, rows)
    except Exception:  # noqa: BLE001 - any failure means: these rows do not fit
        return None


# --- entry points of an ingest process -------------------------------------------------

_encoder: NativeEncoder | None = None


def start_process(types: TableTypes) -> None:
    """Initializer of an ingest process: die with the worker, leave Ctrl-C to it, and
    keep the collector off the long-lived startup objects (batches allocate millions)."""
    global _encoder
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    without_dataframe_libraries()
    _encoder = NativeEncoder(types)
    tune_gc()


def prepare_in_process(
    records: Sequence[RawRecord],
    zones: Mapping[str, str],
    now: datetime,
    epoch: str = "",
    deny: BatchDeny | None = None,
) -> PreparedBatch:
    if _encoder is None:
        raise RuntimeError("ingest process not started (start_process was not run)")
    return prepare_batch(records, zones, now, _encoder, epoch, deny=deny)


def tune_gc() -> None:
    """Freeze what exists now and collect young objects less often.

    A batch allocates about 20 container objects per event; with the default thresholds
    the collector ran every 700 of them and scanned the whole heap often (tuning it
    cut `abacus bench ingest` time by about a fifth). Nothing in a batch forms cycles.
    """
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
