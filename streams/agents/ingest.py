"""Ingest: events topic → decode/validate (pure) → ClickHouse rows + dead letters."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka.errors import (
    CommitFailedError,
    IllegalStateError,
    KafkaError,
    UnsupportedCodecError,
)
from mode import Service

from abacus.errors import StackError, StorageError
from abacus.events.processing import SourceRecord
from abacus.events.reasons import reject
from abacus.ingest.prepare import STORED_TABLES, PreparedBatch, tune_gc
from abacus.kafka_clients import aiokafka_config
from abacus.privacy.deny import DenyList
from abacus.settings import AbacusSettings
from abacus.store.store import Store
from streams.attempts import AttemptLog
from streams.dead_letters import DeadLetterWriter, producer_max_request_bytes
from streams.districts import DistrictRegistry
from streams.ingest_pool import BatchPreparer, default_processes
from streams.ingest_rebalance import IngestRebalance
from streams.ingest_stop import EXIT_UNREADABLE, Drain, codec_error_message, maybe_inject_fault
from streams.metrics import Metrics
from streams.rollups import LateKeyLog

__all__ = ["IngestService", "ready_to_hand_over", "records_wanted"]

log = logging.getLogger(__name__)


# A batch is handed over at this many bytes of records even while the store is busy: it
# bounds the memory of a batch (SDK batch records hold ~50 events each).
_BATCH_BYTES = 2 << 20
# What a record is taken to weigh until a fetch has shown it (an SDK batch record of ~50
# events is ~4 KB): sizes the first fetch (`records_wanted`).
_FIRST_RECORD_BYTES = 4096
# Ingest has a backlog while it has handed a full batch over within this long (`backlogged`).
_BACKLOG_WINDOW_S = 1.0


@dataclass
class _Fetched:
    """A fetched batch on its way: the records as aiokafka read them (kept whole for dead
    letters), the offsets to commit once stored, and its preparation running in an ingest
    process. Records of a quarantined partition (`streams.attempts`) are not prepared but
    dead-lettered."""

    records: list[ConsumerRecord[bytes, bytes]]
    offsets: dict[Any, int]
    prepared: asyncio.Future[PreparedBatch]
    starts: dict[int, int] = field(default_factory=dict)  # partition -> first offset
    quarantined: list[ConsumerRecord[bytes, bytes]] = field(default_factory=list)
    generation: int = 0  # the assignment it was read in (see `abandon`)
    full: bool = False  # handed over because it was full (`IngestService.backlogged`)


class IngestService(Service):
    """Events topic → ingest processes (decode, validate, derive, encode) → store → commit.

    A plain aiokafka consumer (group ``<app_id>-ingest``) hosted by the Faust worker:
    Faust's per-record stream costs ~80 µs a record (docs/architecture.md), `getmany` a few.
    One task fetches and hands each batch to an ingest process; another stores prepared
    batches strictly in fetch order and commits. Offsets are committed only after the
    batch is stored and its dead letters are delivered, so a crash replays at most the
    batches in flight; every stored row is keyed by event_id, so the replay changes nothing.

    On SIGTERM it drains: it keeps reading until its lag is 0 (or ``drain_timeout_s``,
    logged), stores and commits, and only then leaves the group. Records it cannot read
    at all (a codec not installed) stop it for good: ``exit_code`` is then the worker's
    exit status, which `abacus up` does not restart.
    """

    def __init__(
        self,
        settings: AbacusSettings,
        store: Store,
        districts: DistrictRegistry,
        metrics: Metrics,
        broker_epoch: str,
        deny: DenyList,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.store = store
        self.districts = districts
        self.metrics = metrics
        self.broker_epoch = broker_epoch  # stored with each event's partition and offset
        # Late facts' rollup keys, written before the facts (streams/rollups.py); one log
        # with the registry's (pending facts resolved have late keys too).
        self.rollups = districts.late or LateKeyLog(store, enabled=not settings.bench_skip_rollups)
        self.deny = deny  # deleted students: their events and dead letters are dropped
        self.exit_code: int | None = None
        self.topic = settings.topics.name(settings.topics.events)
        self.dead_letter_topic = settings.topics.name(settings.topics.dead_letter)
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self.preparer: BatchPreparer | None = None
        self.dead_letters: DeadLetterWriter | None = None
        self.attempts: AttemptLog | None = None
        processes = settings.ingest_processes
        self.processes = default_processes() if processes is None else processes
        # Fetched batches waiting to be stored; bounded so memory stays bounded.
        self._queue: asyncio.Queue[_Fetched | None] = asyncio.Queue(maxsize=self.processes + 1)
        self._drained = asyncio.Event()
        self._consuming = False
        # First offsets of the batches in flight, per partition, oldest first.
        self._inflight: dict[int, deque[int]] = defaultdict(deque)
        self._committed: dict[Any, int] = {}  # last offset committed per partition
        # Bumped when partitions are revoked (streams/ingest_rebalance.py): batches read
        # before that are not committed, and records held by the fetcher are dropped.
        self._generation = 0
        self._holding = False  # a revoke is waiting for the batches in flight
        self.batch_done = asyncio.Event()  # set each time a batch is finished with
        self._handed = 0  # batches handed to the ingest processes, and stored since start
        self._stored = 0
        self._progress = asyncio.Condition()
        self._full_at = -float("inf")  # monotonic time a full batch was last handed over
        self._full_in_flight = 0  # full batches handed over and not yet finished with
        self._preparing = 0  # batches handed over whose preparation has not finished

    async def on_start(self) -> None:
        settings = self.settings
        broker = settings.broker
        types = await self.store.acolumn_types(STORED_TABLES)
        self.preparer = BatchPreparer(self.processes, types)
        await self.preparer.start()
        tune_gc()
        self.consumer = AIOKafkaConsumer(
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
            # Events of an aborted transaction never count (Kafka; the embedded Tansu
            # delivers them anyway, measured: it does not filter aborted records).
            isolation_level="read_committed",
        )
        # Finish or abandon in-flight batches when partitions are revoked; the wait stays
        # well inside the rebalance timeout, or the group would drop this member.
        wait_s = min(10.0, broker.rebalance_timeout_s / 2)
        self.consumer.subscribe([self.topic], listener=IngestRebalance(self, wait_s))
        self.producer = AIOKafkaProducer(
            **aiokafka_config(broker),
            acks="all",
            max_request_size=producer_max_request_bytes(settings.dead_letter_max_bytes),
        )
        self.dead_letters = DeadLetterWriter(
            self.producer,
            self.store,
            self.dead_letter_topic,
            max_bytes=settings.dead_letter_max_bytes,
        )
        name = f"ingest-attempts-{settings.ingest_group}-{settings.web.port}.json"
        self.attempts = AttemptLog(
            settings.state_dir / name, group=settings.ingest_group, epoch=self.broker_epoch
        )
        await self.producer.start()
        await self.consumer.start()
        self._consuming = True

    async def on_stop(self) -> None:
        # Drain (SIGTERM): the fetcher reads on until caught up, the batches are stored and
        # committed; then leave the group.
        if self._consuming:
            timeout = self.settings.drain_timeout_s + 60
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), timeout=timeout)
        if self.consumer is not None:
            await self.consumer.stop()
        if self.producer is not None:
            await self.producer.stop()
        if self.preparer is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.preparer.close)

    def backlogged(self) -> bool:
        """Whether more records are waiting than a batch holds: a full batch was handed
        over within the last second, or one is still on its way to the store (the rollup
        service holds its passes back meanwhile). The second keeps the signal on while a
        slow machine takes more than a second between full batches: a pass let in then
        ran on the cores the backlog needed."""
        in_flight = self._full_in_flight > 0
        return in_flight or time.monotonic() - self._full_at < _BACKLOG_WINDOW_S

    def assignment(self) -> set[Any]:
        """Partitions held now; none until the consumer has started."""
        return set(self.consumer.assignment()) if self._consuming else set()

    # --- rebalance (streams/ingest_rebalance.py) -------------------------------------------

    def in_flight(self, partitions: Iterable[int]) -> set[int]:
        """Those of ``partitions`` with a batch handed over and not yet committed."""
        return {p for p in partitions if self._inflight.get(p)}

    def hold(self, holding: bool) -> None:
        """Stop (or resume) handing fetched records over, while a revoke waits."""
        self._holding = holding

    def abandon(self, partitions: Iterable[int]) -> int:
        """Give up the batches of revoked partitions still in flight: they are not
        committed (the next owner reads them again) and their attempts do not count.
        Returns how many batches were abandoned."""
        assert self.attempts is not None
        self._generation += 1
        abandoned = 0
        for partition in set(partitions):
            waiting = self._inflight.pop(partition, None)
            if waiting:
                abandoned += len(waiting)
                self.attempts.release(partition)
        self._committed.clear()  # read again from the broker for the new assignment
        return abandoned

    @Service.task
    async def _fetch(self) -> None:
        """Fetch while earlier batches are prepared and stored; hand a batch over as
        `ready_to_hand_over` says: when it is full, when the store has taken everything
        before it, or when the topic is read up to its end and an ingest process is free.

        While the store is busy, newly fetched records wait and join the next batch, so a
        busy store gets fewer, larger batches (fewer ClickHouse parts) instead of a queue
        of small ones, and a record never waits behind more than one batch at moderate load.
        """
        assert self.consumer is not None
        settings = self.settings
        timeout_ms = int(settings.batch_within_s * 1000)
        batch_max = settings.ingest_batch_records
        # aiokafka's records as they come: nothing is built per record in this process (it
        # also fetches and stores); a record becomes a SourceRecord only to be dead-lettered.
        records: list[ConsumerRecord[bytes, bytes]] = []
        offsets: dict[Any, int] = {}
        size = 0  # bytes of record values in `records`
        record_bytes = float(_FIRST_RECORD_BYTES)  # mean size of the last fetch's records
        generation = self._generation  # the assignment `records` were read in
        drain = Drain(settings.drain_timeout_s)
        try:
            while not (self.crashed or (self.should_stop and drain.done)):
                wanted = records_wanted(len(records), size, record_bytes, batch_max)
                fetched: dict[Any, list[ConsumerRecord[bytes, bytes]]] = {}
                if not wanted:  # a full batch held while a revoke waits: no more records
                    await asyncio.sleep(0.02)  # (handed over below once the hold ends)
                else:
                    try:
                        fetched = await self.consumer.getmany(
                            timeout_ms=timeout_ms if not records else 20, max_records=wanted
                        )
                    except UnsupportedCodecError as exc:
                        await self._stop_for_good(codec_error_message(exc))
                        break
                if generation != self._generation:
                    # Partitions were revoked meanwhile: what was held is read again by
                    # whoever owns it now (positions restart at the committed offsets).
                    records, offsets, size = [], {}, 0
                    generation = self._generation
                got = got_bytes = 0
                for tp, recs in fetched.items():
                    records += recs
                    if recs:
                        offsets[tp] = recs[-1].offset + 1
                        got += len(recs)
                        got_bytes += sum(len(rec.value or b"") for rec in recs)
                size += got_bytes
                if got:
                    record_bytes = got_bytes / got
                full = len(records) >= batch_max or size >= _BATCH_BYTES
                idle = not any(fetched.values())
                ready = ready_to_hand_over(
                    full=full,
                    store_idle=self._queue.empty(),
                    stopping=self.should_stop,
                    caught_up=idle,
                    free_processes=self.processes - self._preparing,
                )
                if records and ready and not self._holding:
                    await self._hand_over(records, offsets, full=full)
                    records, offsets, size = [], {}, 0
                if idle and not records:
                    await self._commit_skipped()
                if self.should_stop:
                    await drain.check(self.consumer, idle=idle)
            if records and not self.crashed and generation == self._generation:
                await self._hand_over(records, offsets)
        finally:
            await self._queue.put(None)

    async def _commit_skipped(self) -> None:
        """Commit the position of idle partitions that moved past records nobody reads:
        a transaction's commit marker (a control record) or a compacted gap. Without it a
        transactional producer leaves the group one offset behind the log end forever,
        and `abacus lag` calls it stalled. Safe: nothing of these partitions is in flight,
        so every record before the position is stored or dead-lettered."""
        assert self.consumer is not None
        moved = {}
        try:
            for tp in self.consumer.assignment():
                if self._inflight[tp.partition]:
                    continue
                position = await self.consumer.position(tp)
                if tp not in self._committed:
                    self._committed[tp] = await self.consumer.committed(tp) or 0
                if position > self._committed[tp]:
                    moved[tp] = position
            if moved:
                await self.consumer.commit(moved)
        except KafkaError as exc:  # e.g. mid-rebalance: harmless, tried again when idle
            log.debug("position not committed past skipped records: %s", exc)
            return
        self._committed.update(moved)

    async def _stop_for_good(self, message: str) -> None:
        """Log one clear line and stop the worker with EXIT_UNREADABLE (not restarted)."""
        log.error("%s", message)
        self.exit_code = EXIT_UNREADABLE
        await self.crash(StackError(message))

    async def _hand_over(
        self,
        records: list[ConsumerRecord[bytes, bytes]],
        offsets: dict[Any, int],
        *,
        full: bool = False,
    ) -> None:
        """Count an attempt per partition, set a poison batch aside, start preparing the
        rest in an ingest process and queue the batch for the store."""
        assert self.preparer is not None
        assert self.attempts is not None
        starts: dict[int, int] = {}
        for record in records:
            starts.setdefault(record.partition, record.offset)
        poisoned: set[int] = set()
        for partition, start in starts.items():
            if not self._inflight[partition]:  # the oldest batch of this partition in flight
                tries = self.attempts.attempt(partition, start)
                if tries > self.settings.poison_attempts:
                    poisoned.add(partition)
            self._inflight[partition].append(start)
        quarantined = [r for r in records if r.partition in poisoned]
        raw = [
            (r.partition, r.offset, r.key, r.value) for r in records if r.partition not in poisoned
        ]
        # Only the deny-list entries this batch's record keys (student ids) need cross over.
        deny = self.deny.for_keys(r.key for r in records) if len(self.deny) else None
        zones, now = self.districts.zones(), datetime.now(UTC)
        prepared = asyncio.ensure_future(
            self.preparer.prepare(raw, zones, now, self.broker_epoch, deny=deny)
        )
        self._preparing += 1
        prepared.add_done_callback(self._prepared)
        item = _Fetched(records, offsets, prepared, starts, quarantined, self._generation, full)
        if full:  # the backlog signal (`backlogged`)
            self._full_at = time.monotonic()
            self._full_in_flight += 1
        await self._queue.put(item)
        self._handed += 1

    def _prepared(self, _: asyncio.Future[PreparedBatch]) -> None:
        self._preparing -= 1

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
                try:
                    try:
                        await self._finish(item, await item.prepared)
                    finally:
                        self._full_in_flight -= item.full
                    self.batch_done.set()
                    async with self._progress:
                        self._stored += 1
                        self._progress.notify_all()
                except (StorageError, KafkaError, OSError) as exc:
                    # The store or the broker failed, not this batch: a restart retries it,
                    # and the attempt does not count towards quarantining it.
                    if not isinstance(exc, StorageError) or exc.retriable:
                        assert self.attempts is not None
                        self.attempts.forgive()
                    raise
        finally:
            self._drained.set()

    async def _finish(self, item: _Fetched, batch: PreparedBatch) -> None:
        """Store, deliver dead letters, then commit. Storage errors escape and stop the
        worker before the commit, so the batch is read again after a restart."""
        assert self.consumer is not None
        assert self.dead_letters is not None
        assert self.attempts is not None
        records, metrics = item.records, self.metrics
        if item.generation != self._generation:
            # Read before its partitions were revoked and abandoned: the new owner stores
            # it (and delivers its dead letters, which would otherwise go out twice).
            log.debug("batch of %d records abandoned after a revoke", len(records))
            return
        if self.settings.test_crash_on_key is not None:
            maybe_inject_fault(
                self.settings.test_crash_on_key,
                [_source(r) for r in item.records],
                [_source(r) for r in item.quarantined],
            )
        started = time.perf_counter()
        # Events, then their facts (known districts) or pending marks (unknown ones). Every
        # row is keyed by event_id, so a batch stored twice (a replay after a crash between
        # insert and offset commit) changes nothing. Storage errors escape (see above).
        # The rollup keys of late facts go first, so no late fact is ever without its key.
        seq = await self.rollups.mark(batch.late_keys)
        await self.store.ainsert_blocks(batch.blocks)
        # A district configured while this batch was being prepared: resolve it now.
        await self.districts.resolve_pending(batch.pending_districts)
        self.rollups.stored(seq)
        metrics.insert_seconds.observe(time.perf_counter() - started)
        letters: list[tuple[SourceRecord, str]] = []
        if batch.dead_letters:
            by_position = {(r.partition, r.offset): r for r in records}
            letters = [(_source(by_position[p, o]), reason) for p, o, reason in batch.dead_letters]
        if item.quarantined:
            letters += self._quarantine(item)
        denied = batch.denied
        if letters and len(self.deny):
            kept = self._without_denied(letters)
            denied += len(letters) - len(kept)
            letters = kept
        if letters:
            pointers = await self.dead_letters.deliver(letters, self.broker_epoch)
            metrics.dead_letters_oversized.inc(pointers)
            log.warning("dead-lettered %d record(s) of %d", len(letters), len(records))
        if item.generation != self._generation:
            log.info("stored a batch of %d records, not committed: revoked", len(records))
            return
        if await self._commit(item):
            self._committed.update(item.offsets)
        for partition in item.starts:
            waiting = self._inflight[partition]
            waiting.popleft()
            if waiting:  # the next batch of this partition is now the oldest in flight
                self.attempts.attempt(partition, waiting[0])
        # Freshness: record creation → stored and committed (visible in the aggregates).
        # One histogram update per batch (an observation per record cost ~11 µs each).
        stamps = list(map(_TIMESTAMP, records))
        if None in stamps:
            stamps = [stamp for stamp in stamps if stamp is not None]
        metrics.freshness.observe_ages(time.time() * 1000, stamps)
        metrics.batch_size.observe(len(records))
        for event_type, n in batch.accepted.items():
            metrics.events_accepted.labels(event_type).inc(n)
        for reason, n in batch.rejected.items():
            metrics.events_rejected.labels(reason).inc(n)
        metrics.dead_letters.inc(len(letters))
        metrics.events_denied.inc(denied)
        metrics.events_deduplicated.inc(batch.duplicates_in_batch)
        log.debug(
            "batch of %d records (%d events) stored in %.3fs",
            len(records),
            batch.events,
            time.perf_counter() - started,
        )

    async def _commit(self, item: _Fetched) -> bool:
        """Commit a stored batch's offsets. A group that re-formed before the listener ran
        (this member was too slow, or was dropped) refuses the commit: the batch is then
        read again by the partitions' new owner, harmlessly, and its attempt does not
        count. Whether it was committed."""
        assert self.consumer is not None
        assert self.attempts is not None
        try:
            await self.consumer.commit(item.offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            log.warning(
                "batch of %d records stored but not committed (%s): its partitions moved;"
                " the new owner reads it again",
                len(item.records),
                type(exc).__name__,
            )
            for partition in item.starts:
                self.attempts.release(partition)
            return False
        return True

    def _without_denied(
        self, letters: list[tuple[SourceRecord, str]]
    ) -> list[tuple[SourceRecord, str]]:
        """Dead letters of deleted students are dropped, not kept (their data would live on
        in the dead-letter topic and table): whoever the record names, or its key when it
        names nobody readable. Dead letters are few; this decodes only them."""
        now = datetime.now(UTC)
        return [
            (source, reason)
            for source, reason in letters
            if not self.deny.record_denied(source.key, source.value, now)
        ]

    def _quarantine(self, item: _Fetched) -> list[tuple[SourceRecord, str]]:
        """Dead letters for the records of a poison batch, with one loud line per partition."""
        limit = self.settings.poison_attempts
        partitions = sorted({r.partition for r in item.quarantined})
        for partition in partitions:
            count = sum(1 for r in item.quarantined if r.partition == partition)
            log.error(
                "POISON BATCH: %d attempt(s) at %s[%d]@%d crashed the worker; dead-lettering"
                " its %d record(s) (reason poison_batch) so the stream goes on. Fix the bug,"
                " then `abacus dlq replay --reason-contains poison_batch`.",
                limit,
                self.topic,
                partition,
                item.starts[partition],
                count,
            )
            self.metrics.poison_batches.inc()
        reason = reject(
            "poison_batch", f"the worker crashed {limit} times on the batch holding this record"
        ).reason
        return [(_source(record), reason) for record in item.quarantined]


_TIMESTAMP = attrgetter("timestamp")  # of a record: its producer's create time, in ms


def _source(record: ConsumerRecord[bytes, bytes]) -> SourceRecord:
    """An aiokafka record as the dead-letter path keeps it."""
    r = record
    return SourceRecord(r.topic, r.partition, r.offset, r.key, r.value, r.timestamp)


def ready_to_hand_over(
    *, full: bool, store_idle: bool, stopping: bool, caught_up: bool, free_processes: int
) -> bool:
    """Whether the records gathered go to an ingest process now.

    A full batch goes at once, and so does any batch while the store waits for work or the
    worker stops. Otherwise the records wait for the store to take what is queued, and more
    records join them (fewer, larger batches: fewer parts). That wait is for nothing once a
    fetch brought nothing new (``caught_up``: the topic is read to its end) while an ingest
    process idles: the last records of a burst would otherwise wait for every batch before
    them to be stored before their own preparation even began (`abacus bench ingest
    --no-batch`, 100k events: the last 19,488 records waited 0.68 s of a 1.6 s run).
    """
    return full or store_idle or stopping or (caught_up and free_processes > 0)


def records_wanted(
    held: int,
    held_bytes: int,
    record_bytes: float,
    max_records: int,
    max_bytes: int = _BATCH_BYTES,
) -> int:
    """How many records the next fetch asks for: what fills the batch being gathered to
    ``max_records``, or to ``max_bytes`` at ``record_bytes`` a record (the mean of the last
    fetch), whichever comes first; at least one while the batch is not full, 0 once it is.

    aiokafka returns up to ``max_records`` of whatever it has buffered, well past its own
    ``fetch_max_bytes`` (Tansu measured: 12 MB, ~150k events, in one `getmany`), and a batch
    that large took each ingest process to ~300 MB and the worker past 1 GiB.
    """
    if held >= max_records or held_bytes >= max_bytes:
        return 0
    by_bytes = math.ceil((max_bytes - held_bytes) / max(record_bytes, 1.0))
    return max(1, min(max_records - held, by_bytes))
