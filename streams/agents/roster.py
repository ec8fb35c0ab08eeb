"""The roster agent: compacted roster-* and district-config topics → ClickHouse dimension tables."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

import faust

from abacus.catalog import (
    DISTRICTS,
    ROSTER_LINKS,
    ROSTER_STUDENTS,
    ROSTER_STUDENTS_HISTORY,
    ROSTER_USERS,
    Table,
)
from abacus.district import DistrictConfig
from abacus.privacy.deny import DenyList
from abacus.roster.records import (
    BadRecordError,
    RosterKind,
    decode_value,
    district_row,
    roster_row,
)
from abacus.settings import AbacusSettings
from abacus.store.store import Store
from streams.districts import DistrictRegistry
from streams.health import Readiness
from streams.metrics import Metrics
from streams.portal.accounts import AccountDirectory
from streams.store_retry import StoreRetry

__all__ = ["register", "store_batch"]

log = logging.getLogger(__name__)

# The table(s) each kind is written to; students also go to their history.
_TABLES: dict[RosterKind, tuple[Table, ...]] = {
    RosterKind.USERS: (ROSTER_USERS,),
    RosterKind.STUDENTS: (ROSTER_STUDENTS, ROSTER_STUDENTS_HISTORY),
    RosterKind.LINKS: (ROSTER_LINKS,),
    RosterKind.DISTRICT: (DISTRICTS,),
}
# Where a kind's row names its student (the deny-list applies to these kinds only: a deleted
# district's staff and config may come back with a new contract, its students may not).
_STUDENT_AT = {RosterKind.STUDENTS: 1, RosterKind.LINKS: 2}


def _denied(deny: DenyList, kind: RosterKind, row: tuple[Any, ...]) -> bool:
    at = _STUDENT_AT.get(kind)
    if at is None or not len(deny):
        return False
    imported_at = datetime.fromtimestamp(row[-2] / 1000, UTC)  # the record's version (ms)
    return deny.denies(row[0], row[at], imported_at)


def register(
    app: faust.App,
    settings: AbacusSettings,
    store: Store,
    districts: DistrictRegistry,
    metrics: Metrics,
    deny: DenyList,
    accounts: AccountDirectory,
    readiness: Readiness,
) -> None:
    t = settings.topics
    kinds = {
        t.name(t.roster_users): RosterKind.USERS,
        t.name(t.roster_students): RosterKind.STUDENTS,
        t.name(t.roster_links): RosterKind.LINKS,
        t.name(t.district_config): RosterKind.DISTRICT,
    }
    source = app.topic(*kinds, key_serializer="raw", value_serializer="raw")
    sinks = {name: app.topic(name, key_serializer="raw", value_serializer="raw") for name in kinds}

    def failing(now: bool) -> None:
        readiness.roster_store = not now

    retry = StoreRetry("roster batch", metrics.roster_store_failures, failing)

    @app.agent(source, name="roster")
    async def roster(stream: faust.StreamT[bytes]) -> None:
        async for events in stream.take_events(settings.batch_size, settings.batch_within_s):
            rows: dict[RosterKind, list[tuple[Any, ...]]] = defaultdict(list)
            configs: dict[str, DistrictConfig] = {}
            for event in events:
                msg = event.message
                kind = kinds.get(msg.topic)
                if kind is None:  # cannot happen: the agent reads only these topics
                    continue
                if msg.value is None:  # a tombstone: a deletion already removed the rows
                    metrics.roster_records.labels(kind.value, "tombstone").inc()
                    continue
                # A bad record is logged (no values: they may be personal) and skipped; an
                # exception escaping here would kill the actor.
                try:
                    key = msg.key.decode() if isinstance(msg.key, bytes) else ""
                    doc = decode_value(msg.value)
                    if kind is RosterKind.DISTRICT:
                        config, row = district_row(key, doc)
                        configs[key] = config
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
                    metrics.roster_records.labels(kind.value, "skipped").inc()
                    continue
                if _denied(deny, kind, row):
                    # A deleted student rostered again: dropped, and its key tombstoned
                    # again, until an admin re-enables them (abacus privacy reenable).
                    await sinks[msg.topic].send(key=msg.key, value=None)
                    metrics.roster_records.labels(kind.value, "denied").inc()
                    continue
                rows[kind].append(row)
            # Until the store takes the batch: the agent must not move past it (acks).
            await retry.run(partial(store_batch, store, districts, rows, configs))
            for kind, batch in rows.items():
                metrics.roster_records.labels(kind.value, "stored").inc(len(batch))
                if kind is RosterKind.USERS:
                    # Stored first, then in force: a deactivated user's sessions end at
                    # their next request.
                    accounts.apply_rows(batch)


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
