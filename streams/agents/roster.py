"""The roster agent: compacted roster-* and district-config topics → ClickHouse dimension tables."""

from __future__ import annotations

import logging
from collections import defaultdict
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
from streams.metrics import Metrics
from streams.portal.accounts import AccountDirectory

__all__ = ["register"]

log = logging.getLogger(__name__)

# The table(s) each kind is written to; students also go to their history.
_TABLES: dict[RosterKind, tuple[Table, ...]] = {
    RosterKind.USERS: (ROSTER_USERS,),
    RosterKind.STUDENTS: (ROSTER_STUDENTS, ROSTER_STUDENTS_HISTORY),
    RosterKind.LINKS: (ROSTER_LINKS,),
    RosterKind.DISTRICT: (DISTRICTS,),
}


def register(
    app: faust.App,
    settings: AbacusSettings,
    store: Store,
    districts: DistrictRegistry,
    metrics: Metrics,
    accounts: AccountDirectory,
) -> None:
    t = settings.topics
    kinds = {
        t.name(t.roster_users): RosterKind.USERS,
        t.name(t.roster_students): RosterKind.STUDENTS,
        t.name(t.roster_links): RosterKind.LINKS,
        t.name(t.district_config): RosterKind.DISTRICT,
    }
    source = app.topic(*kinds, key_serializer="raw", value_serializer="raw")

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
                except (BadRecordError, UnicodeDecodeError) as exc:
                    log.warning(
                        "skipping %s record at %s[%d]@%d: %s",
                        kind.value,
                        msg.topic,
                        msg.partition,
                        msg.offset,
                        exc if isinstance(exc, BadRecordError) else "key is not UTF-8",
                    )
                    metrics.roster_records.labels(kind.value, "skipped").inc()
                    continue
                rows[kind].append(row)
            # Storage errors escape on purpose: the worker stops before committing offsets.
            for kind, batch in rows.items():
                for table in _TABLES[kind]:
                    await store.ainsert_rows(table, batch)
                metrics.roster_records.labels(kind.value, "stored").inc(len(batch))
                if kind is RosterKind.USERS:
                    # Stored first, then in force: a deactivated user's sessions end at
                    # their next request.
                    accounts.apply_rows(batch)
            for config in configs.values():
                await districts.update(config)
