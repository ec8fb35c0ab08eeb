"""The roster consumer: compacted roster-*, district-config and roster-oneroster topics →
ClickHouse dimension tables and the district registry."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from mode import Service

from abacus.catalog import (
    DISTRICTS,
    ROSTER_LINKS,
    ROSTER_ONEROSTER_STATE,
    ROSTER_STUDENTS,
    ROSTER_STUDENTS_HISTORY,
    ROSTER_USERS,
    Table,
)
from abacus.district import DistrictConfig
from abacus.kafka_clients import aiokafka_config
from abacus.privacy.deny import DenyList
from abacus.roster.records import (
    BadRecordError,
    RosterKind,
    decode_value,
    district_row,
    roster_row,
    state_row,
)
from abacus.settings import AbacusSettings
from abacus.store.store import Store
from streams.districts import DistrictRegistry
from streams.health import Readiness
from streams.ingest_stop import Drain
from streams.metrics import Metrics
from streams.portal.accounts import AccountDirectory
from streams.store_retry import StoreRetry

__all__ = ["RosterService", "register", "store_batch"]

log = logging.getLogger(__name__)

# The table(s) each kind is written to; students also go to their history.
_TABLES: dict[RosterKind, tuple[Table, ...]] = {
    RosterKind.USERS: (ROSTER_USERS,),
    RosterKind.STUDENTS: (ROSTER_STUDENTS, ROSTER_STUDENTS_HISTORY),
    RosterKind.LINKS: (ROSTER_LINKS,),
    RosterKind.DISTRICT: (DISTRICTS,),
    RosterKind.ONEROSTER_STATE: (ROSTER_ONEROSTER_STATE,),
}
# Where a kind's row names its student (the deny-list applies to these kinds only: a deleted
# district's staff and config may come back with a new contract, its students may not).
_STUDENT_AT = {RosterKind.STUDENTS: 1, RosterKind.LINKS: 2}


# Sends a tombstone for a key on a topic (the worker's producer).
Tombstone = Callable[[str, bytes | None], Awaitable[None]]


def _denied(deny: DenyList, kind: RosterKind, row: tuple[Any, ...]) -> bool:
    at = _STUDENT_AT.get(kind)
    if at is None or not len(deny):
        return False
    imported_at = datetime.fromtimestamp(row[-2] / 1000, UTC)  # the record's version (ms)
    return deny.denies(row[0], row[at], imported_at)


class RosterService(Service):
    """Roster topics → store → commit, as a plain aiokafka batch consumer (group
    ``<app_id>-roster``) hosted by the worker, like ingest.

    Faust's per-record stream costs ~80 µs a record (docs/architecture.md): a 100k-student
    import's 237k records landed ~15 s after the importer had published them (measured);
    `getmany` hands over thousands of records at a time for a few µs each.

    Exactness: every version of a record is stored (the history table keeps each one) and
    the tables keep the latest version per key (ReplacingMergeTree on the record's
    version), so order across topics and a batch read twice change nothing. A batch the
    store refuses is tried again until it is stored (`StoreRetry`: counted, /readyz 503
    meanwhile); offsets are committed only after that, so no batch is committed unstored.
    A deleted student rostered again (the deny-list) is dropped and its key tombstoned
    again. On SIGTERM it drains like ingest (reads until its lag is 0, or
    ``drain_timeout_s``): records an import has just published are stored before an
    embedded broker goes away with them.
    """

    def __init__(
        self,
        settings: AbacusSettings,
        store: Store,
        districts: DistrictRegistry,
        metrics: Metrics,
        accounts: AccountDirectory,
        deny: DenyList,
        readiness: Readiness,
        tombstone: Tombstone,
        *,
        retry: StoreRetry | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.store = store
        self.districts = districts
        self.metrics = metrics
        self.accounts = accounts
        self.deny = deny
        self.tombstone = tombstone

        def failing(now: bool) -> None:
            readiness.roster_store = not now

        self.retry = retry or StoreRetry("roster batch", metrics.roster_store_failures, failing)
        t = settings.topics
        self.kinds = {
            t.name(t.roster_users): RosterKind.USERS,
            t.name(t.roster_students): RosterKind.STUDENTS,
            t.name(t.roster_links): RosterKind.LINKS,
            t.name(t.district_config): RosterKind.DISTRICT,
            t.name(t.roster_oneroster): RosterKind.ONEROSTER_STATE,
        }
        self.consumer: AIOKafkaConsumer | None = None
        self._consuming = False
        self._done = asyncio.Event()

    async def on_start(self) -> None:
        broker = self.settings.broker
        self.consumer = AIOKafkaConsumer(
            *self.kinds,
            **aiokafka_config(broker),
            group_id=self.settings.roster_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=int(broker.session_timeout_s * 1000),
            rebalance_timeout_ms=int(broker.rebalance_timeout_s * 1000),
            heartbeat_interval_ms=int(broker.heartbeat_interval_s * 1000),
            check_crcs=False,  # the broker checks CRCs on produce; pure-Python CRC is costly
            client_id=f"{self.settings.roster_group}-consumer",
        )
        await self.consumer.start()
        self._consuming = True

    async def on_stop(self) -> None:
        # Drained, stored and committed first (see _consume); then leave the group. A batch
        # the store still refuses is abandoned uncommitted: the next start reads it again.
        if self._consuming:
            timeout = self.settings.drain_timeout_s + 60
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._done.wait(), timeout=timeout)
        if self.consumer is not None:
            await self.consumer.stop()

    def assignment(self) -> set[Any]:
        """Partitions held now; none until the consumer has started."""
        return set(self.consumer.assignment()) if self._consuming else set()

    @Service.task
    async def _consume(self) -> None:
        assert self.consumer is not None
        timeout_ms = int(self.settings.batch_within_s * 1000)
        drain = Drain(self.settings.drain_timeout_s, "roster")
        try:
            while not (self.crashed or (self.should_stop and drain.done)):
                fetched = await self.consumer.getmany(
                    timeout_ms=timeout_ms, max_records=self.settings.batch_size
                )
                records = [record for batch in fetched.values() for record in batch]
                if records:
                    await self.handle(records)
                    offsets = {tp: batch[-1].offset + 1 for tp, batch in fetched.items() if batch}
                    await self._commit(offsets)
                if self.should_stop:
                    await drain.check(self.consumer, idle=not records)
        finally:
            self._done.set()

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        assert self.consumer is not None
        try:
            await self.consumer.commit(offsets)
        except KafkaError as exc:
            # Stored already; a member that reads the batch again stores the same versions.
            log.warning("roster offsets not committed (read again later): %s", exc)

    async def handle(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        """Decode one batch, store it (tried again until the store takes it), count it,
        then put its staff rows in force for the portal."""
        rows, configs = await self.decode(records)
        # Until the store takes the batch: its offsets must not be committed before.
        await self.retry.run(partial(store_batch, self.store, self.districts, rows, configs))
        for kind, batch in rows.items():
            self.metrics.roster_records.labels(kind.value, "stored").inc(len(batch))
            if kind is RosterKind.USERS:
                # Stored first, then in force: a deactivated user's sessions end at their
                # next request.
                self.accounts.apply_rows(batch)

    async def decode(
        self, records: Sequence[ConsumerRecord[bytes, bytes]]
    ) -> tuple[dict[RosterKind, list[tuple[Any, ...]]], dict[str, DistrictConfig]]:
        """Rows per kind and district configs. A tombstone (a deletion removed the rows
        already) is counted; a bad record is logged (no values: they may be personal),
        counted as skipped and left out; a denied student's record is dropped and its key
        tombstoned again."""
        rows: dict[RosterKind, list[tuple[Any, ...]]] = defaultdict(list)
        configs: dict[str, DistrictConfig] = {}
        for msg in records:
            kind = self.kinds[msg.topic]
            if msg.value is None:
                self.metrics.roster_records.labels(kind.value, "tombstone").inc()
                continue
            try:
                key = msg.key.decode() if isinstance(msg.key, bytes) else ""
                doc = decode_value(msg.value)
                if kind is RosterKind.DISTRICT:
                    config, row = district_row(key, doc)
                elif kind is RosterKind.ONEROSTER_STATE:
                    row = state_row(key, doc, msg.value)
                else:
                    row = roster_row(kind, key, doc)
            except Exception as exc:  # noqa: BLE001 - one record's problem stays its own
                log.warning(
                    "skipping %s record at %s[%d]@%d: %s",
                    kind.value,
                    msg.topic,
                    msg.partition,
                    msg.offset,
                    _why(exc),
                )
                self.metrics.roster_records.labels(kind.value, "skipped").inc()
                continue
            if _denied(self.deny, kind, row):
                # A deleted student rostered again: dropped, and its key tombstoned again,
                # until an admin re-enables them (abacus privacy reenable).
                await self.tombstone(msg.topic, msg.key)
                self.metrics.roster_records.labels(kind.value, "denied").inc()
                continue
            if kind is RosterKind.DISTRICT:
                configs[key] = config
            rows[kind].append(row)
        return rows, configs


async def store_batch(
    store: Store,
    districts: DistrictRegistry,
    rows: Mapping[RosterKind, Sequence[tuple[Any, ...]]],
    configs: Mapping[str, DistrictConfig],
) -> None:
    """Write one batch's rows, then apply its district configs. Every row is keyed
    (ReplacingMergeTree), so writing a batch again after a partial failure changes nothing."""
    for kind, batch in rows.items():
        for table in _TABLES[kind]:
            await store.ainsert_rows(table, batch)
    for config in configs.values():
        await districts.update(config)


def _why(exc: Exception) -> str:
    """A skipped record's reason, without its values (they may be personal)."""
    if isinstance(exc, BadRecordError):
        return str(exc)
    if isinstance(exc, UnicodeDecodeError):
        return "key is not UTF-8"
    return f"internal error ({type(exc).__name__})"


def register(
    app: faust.App,
    settings: AbacusSettings,
    store: Store,
    districts: DistrictRegistry,
    metrics: Metrics,
    deny: DenyList,
    accounts: AccountDirectory,
    readiness: Readiness,
) -> RosterService:
    """Host the roster consumer in the worker's app; returns it (readiness asks it)."""
    sinks: dict[str, faust.TopicT] = {}

    async def tombstone(topic: str, key: bytes | None) -> None:
        # The worker's Faust producer: started before any hosted service handles records.
        if topic not in sinks:
            sinks[topic] = app.topic(topic, key_serializer="raw", value_serializer="raw")
        await sinks[topic].send(key=key, value=None)

    service = RosterService(
        settings, store, districts, metrics, accounts, deny, readiness, tombstone
    )
    app.service(service)
    return service
