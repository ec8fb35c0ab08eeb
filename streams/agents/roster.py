"""The roster agent: compacted roster-* and district-config topics → ClickHouse dimension tables."""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import faust

from abacus.district import DistrictConfig
from abacus.errors import StorageError
from abacus.roster.records import (
    DISTRICT_COLUMNS,
    LINK_COLUMNS,
    STUDENT_COLUMNS,
    USER_COLUMNS,
    BadRecordError,
    RosterKind,
    decode_value,
    district_row,
    roster_row,
)
from abacus.store.client import Client, query_rows

if TYPE_CHECKING:
    from streams.app import Runtime

__all__ = ["load_districts", "register"]

log = logging.getLogger(__name__)

# Table(s) and columns each kind is written to; students also go to their history.
_TABLES: dict[RosterKind, tuple[tuple[str, ...], tuple[str, ...]]] = {
    RosterKind.USERS: (("roster_users",), USER_COLUMNS),
    RosterKind.STUDENTS: (("roster_students", "roster_students_history"), STUDENT_COLUMNS),
    RosterKind.LINKS: (("roster_links",), LINK_COLUMNS),
    RosterKind.DISTRICT: (("districts",), DISTRICT_COLUMNS),
}


def load_districts(client: Client, database: str) -> dict[str, DistrictConfig]:
    """Every district's latest config from ClickHouse (at worker start); bad ones skipped."""
    out: dict[str, DistrictConfig] = {}
    sql = f"SELECT district_id, config_json FROM {database}.districts FINAL"  # noqa: S608
    for district_id, config_json in query_rows(client, sql):
        try:
            out[district_id] = DistrictConfig.model_validate(
                {**json.loads(config_json), "district_id": district_id}
            )
        except ValueError as exc:  # JSONDecodeError and pydantic's ValidationError
            log.warning("skipping a stored district config: %s", type(exc).__name__)
    return out


def register(app: faust.App, runtime: Runtime) -> None:
    settings = runtime.settings
    t = settings.topics
    kinds = {
        t.name(t.roster_users): RosterKind.USERS,
        t.name(t.roster_students): RosterKind.STUDENTS,
        t.name(t.roster_links): RosterKind.LINKS,
        t.name(t.district_config): RosterKind.DISTRICT,
    }
    source = app.topic(*kinds, key_serializer="raw", value_serializer="raw")
    metrics = runtime.metrics

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
                tables, columns = _TABLES[kind]
                for table in tables:
                    await runtime.writer.insert_async(table, batch, columns)
                metrics.roster_records.labels(kind.value, "stored").inc(len(batch))
            for config in configs.values():
                await _district_changed(runtime, config)


async def _district_changed(runtime: Runtime, config: DistrictConfig) -> None:
    assert config.district_id is not None
    runtime.districts[config.district_id] = config
    for listener in runtime.district_listeners:
        try:
            await listener(config)
        except StorageError:
            raise
        except Exception:  # a listener's bug must not stop roster updates
            log.exception("district listener %r failed", listener)
