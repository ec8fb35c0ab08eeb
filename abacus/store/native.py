"""Rows → ClickHouse Native-format bytes, without a connection (pure, picklable setup).

The ingest processes encode their blocks here, so the process that owns the store only
hands finished bytes to ClickHouse (`Store.ainsert_blocks`). Column types come from
the live tables once at start (`Store.column_types`), never from a copy in code.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from clickhouse_connect.datatypes.base import ClickHouseType
from clickhouse_connect.datatypes.registry import get_from_name
from clickhouse_connect.datatypes.special import UUID
from clickhouse_connect.datatypes.temporal import DateTime64
from clickhouse_connect.driver import options
from clickhouse_connect.driver.common import write_leb128
from clickhouse_connect.driver.insert import InsertContext

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
    """Encode row blocks for tables whose column types are known.

    A block is written as clickhouse-connect writes one (`NativeTransform.build_insert`),
    column by column with its codecs, except two columns every ingest table has, whose
    codecs cost a Python loop per value: UUIDs given as strings and DateTime64 given as
    aware datetimes (0.64 and 0.67 µs an event of the 2.2 µs all encoding took). Those
    are written a column at a time (`_uuid_column`, `_datetime64_column`); a column they
    cannot take whole goes to its codec, which raises for what does not fit.
    """

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
        if not rows:
            return EncodedBlock(table, tuple(columns), b"", 0)
        column_types = [known[c] for c in columns]
        try:
            data = list(zip(*rows, strict=True))
        except ValueError as exc:
            raise ValueError(f"rows for {table} are not all the same length") from exc
        if len(data) != len(columns):
            raise ValueError(f"rows for {table} have {len(data)} values, not {len(columns)}")
        context = InsertContext(table, list(columns), column_types, column_oriented=True)
        out = bytearray()
        write_leb128(len(columns), out)
        write_leb128(len(rows), out)
        for name, ch_type, values in zip(columns, column_types, data, strict=True):
            for text in (name, ch_type.insert_name):
                encoded = text.encode()
                write_leb128(len(encoded), out)
                out += encoded
            fast = _fast_writer(ch_type)
            column = fast(ch_type, values) if fast is not None else None
            if column is not None:
                out += column
                continue
            context.start_column(name)
            try:
                ch_type.write_column(values, out, context)
            except Exception as exc:  # a codec's failure: these rows do not fit
                raise ValueError(f"rows for {table} do not fit its columns") from exc
        return EncodedBlock(table, tuple(columns), bytes(out), len(rows))


# A column writer: the column's Native bytes, or None when it cannot take these values.
_ColumnWriter = Callable[[Any, Sequence[Any]], bytes | None]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LITTLE_ENDIAN = sys.byteorder == "little"


def _fast_writer(ch_type: ClickHouseType) -> _ColumnWriter | None:
    if ch_type.nullable or ch_type.low_card or not _LITTLE_ENDIAN:
        return None
    if isinstance(ch_type, UUID):
        return _uuid_column
    if isinstance(ch_type, DateTime64) and ch_type.prec <= 1_000_000:
        return _datetime64_column
    return None


def _uuid_column(_: Any, values: Sequence[Any]) -> bytes | None:
    """Canonical UUID strings (8-4-4-4-12 hex digits) as Native UUIDs: each one's two
    64-bit halves little-endian. The hex of the whole column is parsed at once and every
    8-byte word byte-swapped; anything else is left to the codec."""
    try:
        text = "".join(values)
    except TypeError:
        return None
    n = len(values)
    if len(text) != 36 * n or any(text[at::36] != "-" * n for at in (8, 13, 18, 23)):
        return None
    digits = text.replace("-", "")
    if len(digits) != 32 * n:
        return None
    try:
        raw = bytes.fromhex(digits)
    except ValueError:
        return None
    if len(raw) != 16 * n:  # fromhex skips whitespace; a column with any is not canonical
        return None
    words = array("Q", raw)
    words.byteswap()
    return words.tobytes()


def _datetime64_column(ch_type: Any, values: Sequence[Any]) -> bytes | None:
    """Aware datetimes as DateTime64 ticks, exactly (floored to the column's precision, as
    the codec does), without a float per value; anything else is left to the codec."""
    tick = timedelta(microseconds=1_000_000 // ch_type.prec)
    try:
        return array("q", [(value - _EPOCH) // tick for value in values]).tobytes()
    except (TypeError, OverflowError):  # naive, not datetimes, or out of range
        return None
