"""Open ClickHouse: a server over HTTP when configured, else chDB in-process (same client)."""

from __future__ import annotations

from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError, OperationalError

from abacus.errors import StorageError
from abacus.settings import AbacusSettings

__all__ = ["Client", "connect", "query_rows", "storage_error"]


def connect(settings: AbacusSettings) -> Client:
    """A clickhouse-connect client for the configured store.

    chDB allows one engine (one data path) per process, so in embedded mode only the
    worker process may call this while the stack is up.
    """
    ch = settings.clickhouse
    try:
        if ch.url is None:
            settings.chdb_path.mkdir(parents=True, exist_ok=True)
            return clickhouse_connect.get_client(dsn=f"chdb://{settings.chdb_path.resolve()}")
        return clickhouse_connect.get_client(dsn=ch.url.get_secret_value())
    except ClickHouseError as exc:
        raise storage_error("cannot open ClickHouse", exc) from exc


def storage_error(what: str, exc: BaseException) -> StorageError:
    """Wrap a driver error once, at the boundary; network trouble is worth a retry."""
    retriable = isinstance(exc, OperationalError)
    return StorageError(f"{what}: {exc}", retriable=retriable)


def query_rows(client: Client, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    """Run a read query and return its rows as tuples."""
    try:
        return list(client.query(sql, parameters=params or None).result_rows)
    except ClickHouseError as exc:
        raise storage_error("query failed", exc) from exc
