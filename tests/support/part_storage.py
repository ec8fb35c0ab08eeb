"""Packed part storage in a real chDB store, in its own process (chDB allows one data path
per process): `python -m tests.support.part_storage OUT`.

It migrates a fresh store, stores a prepared batch of simulated events, reads each table's
figures and its parts' storage types, deletes one student with an `ALTER TABLE … DELETE`
(the privacy deletion's statement kind) and merges everything (`OPTIMIZE … FINAL`), then
closes the store, opens it again and migrates again. OUT gets a JSON document of what was
seen at each step.
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
from abacus.store.native import NativeEncoder
from abacus.store.part_storage import SETTING
from abacus.store.store import Store

TABLES = ("events", "daily_facts", "lesson_facts")


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="abacus-parts-") as home:
        settings = AbacusSettings(home=Path(home), clickhouse=ClickHouseSettings())
        store = Store.open(settings)
        store.migrate()
        db = store.database
        out: dict[str, Any] = {"settings": _settings(store)}
        encoder = NativeEncoder(store.column_types(STORED_TABLES))
        records = encode_records(make_events(20_000)[::4], batch=False)
        raw = [(0, offset, key, value) for offset, (key, value) in enumerate(records)]
        now = datetime(2026, 7, 1, tzinfo=UTC)
        asyncio.run(store.ainsert_blocks(prepare_batch(raw, {DISTRICT: TZ}, now, encoder).blocks))
        out["inserted_parts"] = _storage_types(store)
        out["inserted"] = {t: _figures(store, t) for t in TABLES}
        student = str(store.read(f"SELECT any(student_id) FROM {db}.events")[0][0])
        out["student_rows"] = {
            t: int(
                store.read(
                    f"SELECT count() FROM {db}.{t} WHERE student_id = {{s:String}}", {"s": student}
                )[0][0]
            )
            for t in TABLES
        }
        for table in TABLES:
            store.execute(
                f"ALTER TABLE {db}.{table} DELETE WHERE student_id = '{student}' "
                "SETTINGS mutations_sync = 2"
            )
            store.execute(f"OPTIMIZE TABLE {db}.{table} FINAL")
        out["after_delete"] = {t: _figures(store, t) for t in TABLES}
        out["merged_parts"] = _storage_types(store)
        store.close()
        store = Store.open(settings)  # a restart: the parts are loaded from disk again
        out["migrated_again"] = store.migrate()
        out["reopened"] = {t: _figures(store, t) for t in TABLES}
        out["settings_again"] = _settings(store)
        store.close()
    return out


def _settings(store: Store) -> dict[str, bool]:
    """Each MergeTree table of the store: whether its definition packs small parts."""
    rows = store.read(
        "SELECT name, create_table_query FROM system.tables "
        "WHERE database = {d:String} AND engine LIKE '%MergeTree'",
        {"d": store.database},
    )
    return {str(name): f"{SETTING} = " in str(create) for name, create in rows}


def _storage_types(store: Store) -> dict[str, list[str]]:
    rows = store.read(
        "SELECT table, groupUniqArray(part_storage_type) FROM system.parts "
        "WHERE active AND database = {d:String} AND table IN {t:Array(String)} GROUP BY table",
        {"d": store.database, "t": list(TABLES)},
    )
    return {str(table): sorted(kinds) for table, kinds in rows}


def _figures(store: Store, table: str) -> list[int]:
    rows, checksum = store.read(
        f"SELECT count(), sum(cityHash64(*)) FROM {store.database}.{table}"
    )[0]
    return [int(rows), int(checksum or 0)]


if __name__ == "__main__":
    Path(sys.argv[1]).write_text(json.dumps(run()), encoding="utf-8")
