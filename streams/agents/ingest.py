"""Ingest: events topic → decode/validate (pure) → ClickHouse rows + dead letters."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from mode import Service

from abacus.events.dead_letter import dead_letter_headers
from abacus.events.processing import SourceRecord
from abacus.ingest.prepare import STORED_TABLES, PreparedBatch, tune_gc
from abacus.kafka_clients import aiokafka_config
from abacus.privacy.deny import DenyList
from abacus.settings import AbacusSettings
from abacus.store.store import Store
from streams.districts import DistrictRegistry
from streams.ingest_pool import BatchPreparer, default_processes
from streams.metrics import Metrics

__all__ = ["IngestService"]

log = logging.getLogger(__name__)


# A batch is handed over at this many bytes of records even while the store is busy: it
# bounds the memory of a batch (SDK batch records hold ~50 events each).
_BATCH_BYTES = 2 << 20


@dataclass
class _Fetched:
    """A fetched batch on its way: the records (kept whole for dead letters), the offsets
    to commit once stored, and its preparation running in an ingest process."""

    records: list[SourceRecord]
    offsets: dict[Any, int]
    prepared: asyncio.Future[PreparedBatch]


class IngestService(Service):
    """Events topic → ingest processes (decode, validate, derive, encode) → store → commit.

    A plain aiokafka consumer (group ``<app_id>-ingest``) hosted by the Faust worker:
    Faust's per-record stream costs ~80 µs a record (docs/architecture.md), `getmany` a few.
    One task fetches and hands each batch to an ingest process; another stores prepared
    batches strictly in fetch order and commits. Offsets are committed only after the
    batch is stored and its dead letters are delivered, so a crash replays at most the
    batches in flight; every stored row is keyed by event_id, so the replay changes nothing.
    """

    def __init__(
        self,
        settings: AbacusSettings,
        store: Store,
        districts: DistrictRegistry,
        metrics: Metrics,
        deny: DenyList,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.store = store
        self.districts = districts
        self.metrics = metrics
        self.deny = deny
        self.topic = settings.topics.name(settings.topics.events)
        self.dead_letter_topic = settings.topics.name(settings.topics.dead_letter)
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self.preparer: BatchPreparer | None = None
        processes = settings.ingest_processes
        self.processes = default_processes() if processes is None else processes
        # Fetched batches waiting to be stored; bounded so memory stays bounded.
        self._queue: asyncio.Queue[_Fetched | None] = asyncio.Queue(maxsize=self.processes + 1)
        self._drained = asyncio.Event()
        self._consuming = False
        self._handed = 0  # batches handed to the ingest processes, and stored since start
        self._stored = 0
        self._progress = asyncio.Condition()

    async def on_start(self) -> None:
        settings = self.settings
        broker = settings.broker
        types = await self.store.acolumn_types(STORED_TABLES)
        self.preparer = BatchPreparer(self.processes, types)
        await self.preparer.start()
        tune_gc()
        self.consumer = AIOKafkaConsumer(
            self.topic,
            **aiokafka_config(broker),
            group_id=settings.ingest_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=int(broker.session_timeout_s * 1000),
            rebalance_timeout_ms=int(broker.rebalance_timeout_s * 1000),
            heartbeat_interval_ms=int(broker.heartbeat_interval_s * 1000),
            # Bounds a batch (and the worker's memory) when records are SDK batches.
            max_partition_fetch_bytes=512 << 10,
            fetch_max_bytes=2 << 20,
            check_crcs=False,  # the broker checks CRCs on produce; pure-Python CRC is costly
        )
        self.producer = AIOKafkaProducer(**aiokafka_config(broker), acks="all")
        await self.producer.start()
        await self.consumer.start()
        self._consuming = True

    async def on_stop(self) -> None:
        # Let the batches in flight be stored and committed (SIGTERM), then leave the group.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._drained.wait(), timeout=60)
        if self.consumer is not None:
            await self.consumer.stop()
        if self.producer is not None:
            await self.producer.stop()
        if self.preparer is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.preparer.close)

    def assignment(self) -> set[Any]:
        """Partitions held now; none until the consumer has started."""
        return set(self.consumer.assignment()) if self._consuming else set()

    @Service.task
    async def _fetch(self) -> None:
        """Fetch while earlier batches are prepared and stored; hand a batch over when the
        store has taken everything before it, or when it is full.

        While the store is busy, newly fetched records wait and join the next batch, so a
        busy store gets fewer, larger batches (fewer ClickHouse parts) instead of a queue
        of small ones, and a record never waits behind more than one batch at moderate load.
        """
        assert self.consumer is not None
        settings = self.settings
        timeout_ms = int(settings.batch_within_s * 1000)
        batch_max = settings.ingest_batch_records
        records: list[SourceRecord] = []
        offsets: dict[Any, int] = {}
        size = 0  # bytes of record values in `records`
        try:
            while not self.should_stop:
                fetched = await self.consumer.getmany(
                    timeout_ms=timeout_ms if not records else 20,
                    max_records=batch_max - len(records),
                )
                for tp, recs in fetched.items():
                    records += (
                        SourceRecord(
                            tp.topic, tp.partition, rec.offset, rec.key, rec.value, rec.timestamp
                        )
                        for rec in recs
                    )
                    if recs:
                        offsets[tp] = recs[-1].offset + 1
                        size += sum(len(rec.value or b"") for rec in recs)
                full = len(records) >= batch_max or size >= _BATCH_BYTES
                if records and (full or self._queue.empty()):
                    await self._hand_over(records, offsets)
                    records, offsets, size = [], {}, 0
            if records:
                await self._hand_over(records, offsets)
        finally:
            await self._queue.put(None)

    async def _hand_over(self, records: list[SourceRecord], offsets: dict[Any, int]) -> None:
        """Start preparing a batch in an ingest process and queue it for the store."""
        assert self.preparer is not None
        raw = [(r.partition, r.offset, r.key, r.value) for r in records]
        # Only the deny-list entries this batch's record keys (student ids) need cross over.
        deny = self.deny.for_keys(r.key for r in records) if len(self.deny) else None
        prepared = asyncio.ensure_future(
            self.preparer.prepare(raw, self.districts.zones(), datetime.now(UTC), deny=deny)
        )
        await self._queue.put(_Fetched(records, offsets, prepared))
        self._handed += 1

    def _without_denied(
        self, records: list[SourceRecord], letters: list[tuple[int, int, str]]
    ) -> list[tuple[int, int, str]]:
        """Dead letters of deleted students are dropped, not kept (their data would live on
        in the dead-letter topic): whoever the record names, or its key when it names
        nobody readable. Dead letters are few; this decodes only them."""
        now = datetime.now(UTC)
        by_position = {(r.partition, r.offset): r for r in records}
        kept = []
        for partition, offset, reason in letters:
            source = by_position[partition, offset]
            if not self.deny.record_denied(source.key, source.value, now):
                kept.append((partition, offset, reason))
        return kept

    async def barrier(self, timeout_s: float = 120.0) -> None:
        """Wait until every batch handed over before now is stored (those prepared before a
        deny-list change); later batches see the change."""
        target = self._handed
        with contextlib.suppress(TimeoutError):
            async with self._progress:
                done = self._progress.wait_for(lambda: self._stored >= target or self.should_stop)
                await asyncio.wait_for(done, timeout_s)

    @Service.task
    async def _store(self) -> None:
        """Store and commit prepared batches in fetch order, until the fetcher stops."""
        try:
            while (item := await self._queue.get()) is not None:
                await self._finish(item.records, await item.prepared, item.offsets)
                async with self._progress:
                    self._stored += 1
                    self._progress.notify_all()
        finally:
            self._drained.set()

    async def _finish(
        self, records: list[SourceRecord], batch: PreparedBatch, offsets: dict[Any, int]
    ) -> None:
        """Store, deliver dead letters, then commit. Storage errors escape and stop the
        worker before the commit, so the batch is read again after a restart."""
        assert self.consumer is not None
        assert self.producer is not None
        metrics = self.metrics
        started = time.perf_counter()
        # Events, then their facts (known districts) or pending marks (unknown ones). Every
        # row is keyed by event_id, so a batch stored twice (a replay after a crash between
        # insert and offset commit) changes nothing. Storage errors escape (see above).
        await self.store.ainsert_blocks(batch.blocks)
        # A district configured while this batch was being prepared: resolve it now.
        await self.districts.resolve_pending(batch.pending_districts)
        metrics.insert_seconds.observe(time.perf_counter() - started)
        dead_letters = batch.dead_letters
        if dead_letters and len(self.deny):
            dead_letters = self._without_denied(records, dead_letters)
        if dead_letters:
            by_position = {(r.partition, r.offset): r for r in records}
            sends = [
                await self.producer.send(
                    self.dead_letter_topic,
                    key=source.key,
                    value=source.value or b"",
                    headers=dead_letter_headers(
                        source.topic, source.partition, source.offset, reason
                    ),
                )
                for partition, offset, reason in dead_letters
                for source in (by_position[partition, offset],)
            ]
            await asyncio.gather(*sends)
            log.warning("dead-lettered %d record(s) of %d", len(sends), len(records))
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
        metrics.dead_letters.inc(len(dead_letters))
        metrics.events_denied.inc(batch.denied + len(batch.dead_letters) - len(dead_letters))
        metrics.events_deduplicated.inc(batch.duplicates_in_batch)
        log.debug(
            "batch of %d records (%d events) stored in %.3fs",
            len(records),
            batch.events,
            time.perf_counter() - started,
        )
