"""Ingest: events topic → decode/validate (pure) → ClickHouse rows + dead letters."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import faust
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from mode import Service

from abacus.aggregation.derive import (
    BENCHMARK_COLUMNS,
    DAILY_COLUMNS,
    LESSON_COLUMNS,
    derive_facts,
)
from abacus.aggregation.pending import PENDING_COLUMNS, resolve_pending
from abacus.district import DistrictConfig
from abacus.events.codec import Event, as_uuid
from abacus.events.processing import (
    EVENT_COLUMNS,
    DeadLetter,
    IngestBatch,
    SourceRecord,
    process_records,
)

if TYPE_CHECKING:
    from streams.app import Runtime

__all__ = ["IngestService", "register", "store_batch", "timezone_resolver"]

log = logging.getLogger(__name__)


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
        marks = [[e["district_id"], as_uuid(e["event_id"]), 0] for e in pending]
        await writer.insert_async("pending_facts", marks, PENDING_COLUMNS)
        # A district configured while this batch was in flight: resolve it now.
        for district_id in {e["district_id"] for e in pending} & set(runtime.districts):
            resolved = await writer.run(
                resolve_pending, writer, district_id, timezone_resolver(runtime)
            )
            runtime.metrics.pending_resolved.inc(resolved)


class IngestService(Service):
    """Events topic → pure decode/validate → one columnar insert per table → commit.

    A plain aiokafka consumer (group ``<app_id>-ingest``) hosted by the Faust worker:
    Faust's per-record stream costs ~80 µs a record (DESIGN.md §2), `getmany` a few.
    Offsets are committed only after the batch is stored and its dead letters are
    delivered, so a crash replays at most the batch in flight; every stored row is keyed
    by event_id, so the replay changes nothing.
    """

    def __init__(self, runtime: Runtime) -> None:
        super().__init__()
        self.runtime = runtime
        settings = runtime.settings
        self.topic = settings.topics.name(settings.topics.events)
        self.dead_letter_topic = settings.topics.name(settings.topics.dead_letter)
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    async def on_start(self) -> None:
        settings = self.runtime.settings
        broker = settings.broker
        self.consumer = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=broker.servers,
            group_id=settings.ingest_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=int(broker.session_timeout_s * 1000),
            rebalance_timeout_ms=int(broker.rebalance_timeout_s * 1000),
            heartbeat_interval_ms=int(broker.heartbeat_interval_s * 1000),
            # Bounds a batch (and the worker's memory) when records are SDK batches.
            max_partition_fetch_bytes=1 << 20,
            fetch_max_bytes=4 << 20,
            check_crcs=False,  # the broker checks CRCs on produce; pure-Python CRC is costly
        )
        self.producer = AIOKafkaProducer(bootstrap_servers=broker.servers, acks="all")
        await self.producer.start()
        await self.consumer.start()

    async def on_stop(self) -> None:
        # Let the batch in flight be stored and committed (SIGTERM), then leave the group.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout=60)
        if self.consumer is not None:
            await self.consumer.stop()
        if self.producer is not None:
            await self.producer.stop()

    def assignment(self) -> set[Any]:
        return set(self.consumer.assignment()) if self.consumer is not None else set()

    @Service.task
    async def _consume(self) -> None:
        """Fetch and decode batch N+1 while batch N is stored on the store's thread.

        Batches are stored and committed strictly in order; at most one is in flight.
        """
        assert self.consumer is not None
        settings = self.runtime.settings
        timeout_ms = int(settings.batch_within_s * 1000)
        in_flight: asyncio.Task[None] | None = None
        try:
            while not self.should_stop:
                fetched = await self.consumer.getmany(
                    timeout_ms=timeout_ms, max_records=settings.batch_size
                )
                if not fetched:
                    if in_flight is not None:
                        await in_flight
                        in_flight = None
                    continue
                self._idle.clear()
                records = [
                    SourceRecord(
                        tp.topic, tp.partition, rec.offset, rec.key, rec.value, rec.timestamp
                    )
                    for tp, recs in fetched.items()
                    for rec in recs
                ]
                # Per-record failures never escape: they become dead letters.
                batch = process_records(records, now=datetime.now(UTC))
                offsets = {tp: recs[-1].offset + 1 for tp, recs in fetched.items() if recs}
                if in_flight is not None:
                    await in_flight
                in_flight = asyncio.create_task(self._finish(records, batch, offsets))
            if in_flight is not None:
                await in_flight
        finally:
            self._idle.set()

    async def _finish(
        self, records: list[SourceRecord], batch: IngestBatch, offsets: dict[Any, int]
    ) -> None:
        """Store, deliver dead letters, then commit. Storage errors escape and stop the
        worker before the commit, so the batch is read again after a restart."""
        assert self.consumer is not None
        assert self.producer is not None
        metrics = self.runtime.metrics
        started = time.perf_counter()
        await store_batch(self.runtime, batch)
        metrics.insert_seconds.observe(time.perf_counter() - started)
        sends = [
            await self.producer.send(
                self.dead_letter_topic,
                key=letter.source.key,
                value=letter.source.value or b"",
                headers=dead_letter_headers(letter),
            )
            for letter in batch.dead_letters
        ]
        if sends:
            await asyncio.gather(*sends)
        await self.consumer.commit(offsets)
        # Freshness: record creation → stored and committed (visible in the aggregates).
        now_ms = time.time() * 1000
        for record in records:
            if record.timestamp_ms is not None:
                metrics.freshness.observe(max(0.0, (now_ms - record.timestamp_ms) / 1000))
        metrics.batch_size.observe(len(records))
        for event_type, n in batch.accepted.items():
            metrics.events_accepted.labels(event_type).inc(n)
        for reason, n in batch.rejected.items():
            metrics.events_rejected.labels(reason).inc(n)
        metrics.dead_letters.inc(len(batch.dead_letters))
        metrics.events_deduplicated.inc(batch.duplicates_in_batch)
        if batch.dead_letters:
            log.warning("dead-lettered %d record(s) of %d", len(batch.dead_letters), len(records))
        log.debug(
            "batch of %d records stored in %.3fs", len(records), time.perf_counter() - started
        )


def register(app: faust.App, runtime: Runtime) -> IngestService:
    """Host the ingest service in the app and resolve pending facts on new districts."""
    metrics = runtime.metrics

    async def on_district_config(config: DistrictConfig) -> None:
        assert config.district_id is not None
        resolved = await runtime.writer.run(
            resolve_pending, runtime.writer, config.district_id, timezone_resolver(runtime)
        )
        metrics.pending_resolved.inc(resolved)

    runtime.district_listeners.append(on_district_config)
    service = IngestService(runtime)
    app.service(service)
    return service
