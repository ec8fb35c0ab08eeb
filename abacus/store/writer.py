"""I/O-only ClickHouse writers: take prepared rows, insert them as one columnar block."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from clickhouse_connect.driver.exceptions import ClickHouseError

from abacus.errors import StorageError
from abacus.store.client import Client, storage_error
from abacus.store.native import EncodedBlock

__all__ = ["BlockWriter"]


class BlockWriter:
    """Insert row batches from async code without blocking the event loop.

    One thread owns the client: chDB and clickhouse-connect clients are not meant to be
    shared across threads, and ordering of inserts then follows the order of calls.
    """

    def __init__(self, client: Client, database: str) -> None:
        self.client = client
        self.database = database
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickhouse")

    def insert(self, table: str, rows: Sequence[Sequence[Any]], columns: Sequence[str]) -> None:
        if not rows:
            return
        try:
            self.client.insert(f"{self.database}.{table}", rows, column_names=list(columns))
        except ClickHouseError as exc:
            raise storage_error(f"insert into {table} failed", exc) from exc

    def insert_native(self, block: EncodedBlock) -> None:
        """Insert a block encoded elsewhere (an ingest process): no Python work per row."""
        if not block.rows:
            return
        try:
            self.client.raw_insert(
                f"{self.database}.{block.table}", list(block.columns), block.data, fmt="Native"
            )
        except ClickHouseError as exc:
            raise storage_error(f"insert into {block.table} failed", exc) from exc

    def column_types(self, tables: Sequence[str]) -> dict[str, dict[str, str]]:
        """Column name → type of each table, as the store has them (for NativeEncoder)."""
        rows = self.client.query(
            "SELECT table, name, type FROM system.columns "
            "WHERE database = {db:String} AND table IN {tables:Array(String)}",
            parameters={"db": self.database, "tables": list(tables)},
        ).result_rows
        types: dict[str, dict[str, str]] = {}
        for table, name, type_name in rows:
            types.setdefault(table, {})[name] = type_name
        missing = set(tables) - set(types)
        if missing:
            names = ", ".join(sorted(missing))
            raise StorageError(f"tables missing: {names} (run `abacus init`)", retriable=False)
        return types

    async def insert_async(
        self, table: str, rows: Sequence[Sequence[Any]], columns: Sequence[str]
    ) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._pool, self.insert, table, rows, columns)

    async def run(self, fn: Any, *args: Any) -> Any:
        """Run any other blocking client call on the owning thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, fn, *args)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
