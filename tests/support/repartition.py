"""Migration 0065 on a store holding data in 0053's 8 partitions, in a real chDB, in its
own process (chDB allows one data path per process): `python -m tests.support.repartition
OUT`.

It migrates a fresh store, stores a prepared batch of simulated events, puts the three
per-student tables back into 8 partitions (0053's statements) and forgets 0065, leaves a
half-made copy behind as a crash would, then migrates again. OUT gets a JSON document:
each table's rows and checksum before and after, its partition key, partitions and
indexes after, and the tables left over.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from abacus.bench.ingest_data import DISTRICT, TZ, encode_records, make_events
from abacus.ingest.prepare import STORED_TABLES, prepare_batch
from abacus.settings import AbacusSettings, ClickHouseSettings
from abacus.store.migrations import _statements, migration_files
from abacus.store.native import NativeEncoder
from abacus.store.store import Store

TABLES = ("events", "daily_facts", "lesson_facts")


def _figures(store: Store, table: str) -> list[int]:
    db = store.database
    rows, checksum = store.read(f"SELECT count(), sum(cityHash64(*)) FROM {db}.{table}")[0]
    return [int(rows), int(checksum or 0)]


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="abacus-repartition-") as home:
        store = Store.open(AbacusSettings(home=Path(home), clickhouse=ClickHouseSettings()))
        store.migrate()
        db = store.database
        encoder = NativeEncoder(store.column_types(STORED_TABLES))
        records = encode_records(make_events(40_000)[::10], batch=False)  # many students
        raw = [(0, offset, key, value) for offset, (key, value) in enumerate(records)]
        now = datetime(2026, 7, 1, tzinfo=UTC)
        asyncio.run(store.ainsert_blocks(prepare_batch(raw, {DISTRICT: TZ}, now, encoder).blocks))
        sql = {name: text for _, name, text in migration_files()}
        for statement in _statements(sql["0053_partition_by_student.sql"]):
            store.execute(statement.replace("{db}", db))
        store.execute(f"DELETE FROM {db}.schema_migrations WHERE version = 65")
        store.execute(f"CREATE TABLE {db}.events_repartitioned AS {db}.events")  # a crash's
        before = {t: _figures(store, t) for t in TABLES}
        before_keys = {t: _partition_key(store, t) for t in TABLES}
        before_partitions = {t: _partitions(store, t) for t in TABLES}
        applied = store.migrate()
        after = {t: _figures(store, t) for t in TABLES}
        out = {
            "applied": applied,
            "before": before,
            "before_keys": before_keys,
            "after": after,
            "keys": {t: _partition_key(store, t) for t in TABLES},
            "before_partitions": before_partitions,
            "partitions": {t: _partitions(store, t) for t in TABLES},
            "indexes": sorted(
                f"{t}.{n}"
                for t, n in store.read(
                    "SELECT table, name FROM system.data_skipping_indices "
                    "WHERE database = {d:String}",
                    {"d": db},
                )
            ),
            "tables": sorted(str(t) for (t,) in store.read(f"SHOW TABLES FROM {db}")),
        }
        store.close()
    return out


def _partitions(store: Store, table: str) -> list[str]:
    return sorted(
        str(p)
        for (p,) in store.read(
            "SELECT DISTINCT partition FROM system.parts "
            "WHERE active AND database = {d:String} AND table = {t:String}",
            {"d": store.database, "t": table},
        )
    )


def _partition_key(store: Store, table: str) -> str:
    return str(
        store.read(
            "SELECT partition_key FROM system.tables WHERE database = {d:String} "
            "AND name = {t:String}",
            {"d": store.database, "t": table},
        )[0][0]
    )


if __name__ == "__main__":
    Path(sys.argv[1]).write_text(json.dumps(run()), encoding="utf-8")
