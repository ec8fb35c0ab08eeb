"""Versioned ClickHouse migrations (`migrations/NNNN_name.sql`), applied idempotently in order.

The same files serve chDB and a ClickHouse server; `{db}` in them is the database name.
The store runs `apply` on its own thread (`Store.migrate`), which wraps driver errors.
"""

from __future__ import annotations

import logging
from importlib import resources

from clickhouse_connect.driver.client import Client

from abacus.catalog import SCHEMA_MIGRATIONS

__all__ = ["apply", "migration_files"]

log = logging.getLogger(__name__)
_PACKAGE = "abacus.store"


def migration_files() -> list[tuple[int, str, str]]:
    """(version, name, sql) for every bundled migration, oldest first."""
    folder = resources.files(_PACKAGE).joinpath("migrations")
    out = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            out.append((version, entry.name, entry.read_text(encoding="utf-8")))
    return sorted(out)


def _statements(sql: str) -> list[str]:
    lines = [ln for ln in sql.splitlines() if not ln.lstrip().startswith("--")]
    return [stmt.strip() for stmt in "\n".join(lines).split(";") if stmt.strip()]


def apply(client: Client, database: str) -> list[str]:
    """Create the database and apply every migration not yet recorded; safe to run twice."""
    record = f"{database}.{SCHEMA_MIGRATIONS.name}"
    client.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    client.command(
        f"CREATE TABLE IF NOT EXISTS {record} "
        "(version UInt32, name String, applied_at DateTime DEFAULT now()) "
        "ENGINE = ReplacingMergeTree ORDER BY version"
    )
    done = {row[0] for row in client.query(f"SELECT version FROM {record} FINAL").result_rows}  # noqa: S608
    applied = []
    for version, name, sql in migration_files():
        if version in done:
            continue
        for stmt in _statements(sql):
            client.command(stmt.replace("{db}", database))
        client.insert(record, [[version, name]], column_names=list(SCHEMA_MIGRATIONS.columns))
        log.info("applied migration %s", name)
        applied.append(name)
    return applied
