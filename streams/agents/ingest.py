"""The ingest agent: events topic → decode/validate (pure) → ClickHouse rows + dead letters."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import faust

from abacus.aggregation.derive import (
    BENCHMARK_COLUMNS,
    DAILY_COLUMNS,
    LESSON_COLUMNS,
    derive_facts,
)
from abacus.aggregation.pending import PENDING_COLUMNS, resolve_pending
from abacus.district import DistrictConfig
from abacus.events.codec import Event
from abacus.events.processing import (
    EVENT_COLUMNS,
    DeadLetter,
    IngestBatch,
    SourceRecord,
    process_records,
)

if TYPE_CHECKING:
    from streams.app import Runtime

__all__ = ["register", "to_source_records"]

log = logging.getLogger(__name__)


def to_source_records(events: Sequence[Any]) -> list[SourceRecord]:
    """Faust events → plain records (topic, partition, offset, key, original bytes)."""
    out = []
    for event in events:
        msg = event.message
        out.append(SourceRecord(msg.topic, msg.partition, msg.offset, msg.key, msg.value))
    return out


def dead_letter_headers(letter: DeadLetter) -> list[tuple[str, bytes]]:
    src = letter.source
    return [
        ("abacus.reason", letter.reason.encode()),
        ("abacus.source.topic", src.topic.encode()),
        ("abacus.source.partition", str(src.partition).encode()),
        ("abacus.source.offset", str(src.offset).encode()),
        ("abacus.failed_at", datetime.now(UTC).isoformat().encode()),
    ]


def timezone_resolver(runtime: Runtime) -> Callable[[Event], str]:
    """The IANA zone an event's local day is computed in (its district's)."""

    def timezone_of(event: Event) -> str:
        return runtime.districts[event["district_id"]].timezone_for(None)

    return timezone_of


async def store_batch(runtime: Runtime, batch: IngestBatch) -> None:
    """Events, then their facts (known districts) or pending marks (unknown districts).

    Every row is keyed by event_id, so a batch stored twice (a replay after a crash
    between insert and offset commit) changes nothing.
    """
    writer = runtime.writer
    await writer.insert_async("events", batch.rows, EVENT_COLUMNS)
    known = [e for e in batch.events if e["district_id"] in runtime.districts]
    pending = [e for e in batch.events if e["district_id"] not in runtime.districts]
    if known:
        facts = derive_facts(known, timezone_resolver(runtime))
        await writer.insert_async("daily_facts", facts.daily, DAILY_COLUMNS)
        await writer.insert_async("lesson_facts", facts.lessons, LESSON_COLUMNS)
        await writer.insert_async("benchmark_facts", facts.benchmarks, BENCHMARK_COLUMNS)
    if pending:
        marks = [[e["district_id"], uuid.UUID(e["event_id"]), 0] for e in pending]
        await writer.insert_async("pending_facts", marks, PENDING_COLUMNS)
        # A district configured while this batch was in flight: resolve it now.
        for district_id in {e["district_id"] for e in pending} & set(runtime.districts):
            resolved = await writer.run(
                resolve_pending, writer, district_id, timezone_resolver(runtime)
            )
            runtime.metrics.pending_resolved.inc(resolved)


def register(app: faust.App, runtime: Runtime) -> None:
    settings = runtime.settings
    topics = settings.topics
    source = app.topic(topics.name(topics.events), key_serializer="raw", value_serializer="raw")
    dead_letters = app.topic(
        topics.name(topics.dead_letter), key_serializer="raw", value_serializer="raw"
    )
    metrics = runtime.metrics

    async def on_district_config(config: DistrictConfig) -> None:
        assert config.district_id is not None
        resolved = await runtime.writer.run(
            resolve_pending, runtime.writer, config.district_id, timezone_resolver(runtime)
        )
        metrics.pending_resolved.inc(resolved)

    runtime.district_listeners.append(on_district_config)

    @app.agent(source, name="ingest")
    async def ingest(stream: faust.StreamT[bytes]) -> None:
        async for events in stream.take_events(settings.batch_size, settings.batch_within_s):
            # Per-record failures never escape: they become dead letters (an exception
            # here would kill the actor). Storage errors do escape and stop the worker
            # before offsets are committed, so the batch is read again after restart.
            batch = process_records(to_source_records(events), now=datetime.now(UTC))
            started = time.perf_counter()
            await store_batch(runtime, batch)
            metrics.insert_seconds.observe(time.perf_counter() - started)
            for letter in batch.dead_letters:
                await dead_letters.send(
                    key=letter.source.key,
                    value=letter.source.value or b"",
                    headers=dead_letter_headers(letter),
                )
            metrics.batch_size.observe(len(events))
            for event_type, n in batch.accepted.items():
                metrics.events_accepted.labels(event_type).inc(n)
            for reason, n in batch.rejected.items():
                metrics.events_rejected.labels(reason).inc(n)
            metrics.dead_letters.inc(len(batch.dead_letters))
            metrics.events_deduplicated.inc(batch.duplicates_in_batch)
            if batch.dead_letters:
                log.warning(
                    "dead-lettered %d record(s) of %d", len(batch.dead_letters), len(events)
                )
