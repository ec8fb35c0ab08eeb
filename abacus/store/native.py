"""Rows → ClickHouse Native-format bytes, without a connection (pure, picklable setup).

The ingest processes encode their blocks here, so the process that owns the store only
hands finished bytes to ClickHouse (`Store.ainsert_blocks`). Column types come from
the live tables once at start (`Store.column_types`), never from a copy in code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from clickhouse_connect.datatypes.registry import get_from_name
from clickhouse_connect.driver import options
from clickhouse_connect.driver.insert import InsertContext
from clickhouse_connect.driver.transform import NativeTransform

__all__ = ["EncodedBlock", "NativeEncoder", "TableTypes", "without_dataframe_libraries"]

# table -> column -> ClickHouse type name, as `system.columns` reports it
TableTypes = Mapping[str, Mapping[str, str]]


def without_dataframe_libraries() -> None:
    """Tell clickhouse-connect that numpy, pandas, pyarrow and polars are absent.

    It imports them lazily on the first insert to check whether the rows are a
    DataFrame; ours are always Python rows, and in an ingest process the imports cost
    ~0.7 s and ~100 MB (they are installed as chDB dependencies).
    """
    for name in ("np", "pd", "pd_time_test", "arrow", "pl"):
        setattr(options, name, None)


@dataclass(frozen=True)
class EncodedBlock:
    """One insert's worth of rows for one table, already in Native format."""

    table: str
    columns: tuple[str, ...]
    data: bytes
    rows: int


class NativeEncoder:
    """Encode row blocks for tables whose column types are known."""

    def __init__(self, types: TableTypes) -> None:
        self.types = {
            table: {column: get_from_name(name) for column, name in columns.items()}
            for table, columns in types.items()
        }

    def encode(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> EncodedBlock:
        known = self.types.get(table)
        if known is None:
            raise ValueError(f"no column types known for table {table}")
        unknown = [c for c in columns if c not in known]
        if unknown:
            raise ValueError(f"no column types known for {table}.{unknown[0]}")
        column_types = [known[c] for c in columns]
        if not rows:
            return EncodedBlock(table, tuple(columns), b"", 0)
        context = InsertContext(table, list(columns), column_types, data=rows)
        # The first chunk starts with an "INSERT INTO … FORMAT Native" line meant for an
        # HTTP body; the store is told the table and format separately.
        chunks = list(NativeTransform.build_insert(context))
        failure = context.insert_exception
        # The context refers to itself (a bound method in its own attributes), so it and
        # the rows would wait for the cycle collector; dropping its state frees them now.
        vars(context).clear()
        if failure is not None:
            raise ValueError(f"rows for {table} do not fit its columns") from failure
        data = b"".join(chunks)
        return EncodedBlock(table, tuple(columns), data[data.index(b"\n") + 1 :], len(rows))
