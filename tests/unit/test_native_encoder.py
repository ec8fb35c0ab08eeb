"""The Native encoder's column-at-a-time writers produce the bytes clickhouse-connect's own
codecs write, value for value, and leave to the codec every column they cannot take whole."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from clickhouse_connect.datatypes.registry import get_from_name
from clickhouse_connect.driver.insert import InsertContext
from clickhouse_connect.driver.transform import NativeTransform
from clickhouse_connect.driverc.buffer import ResponseBuffer

from abacus.store.native import NativeEncoder, _datetime64_column, _uuid_column

IDS = [
    "123e4567-e89b-12d3-a456-426614174000",
    "FFFFFFFF-FFFF-4FFF-bfff-ffffffffffff",
    "00000000-0000-0000-0000-000000000000",
    str(uuid.UUID(int=(1 << 127) + 12345)),
]
TIMES = [
    datetime(2026, 3, 8, 7, 59, 59, 999_999, tzinfo=UTC),
    datetime(2026, 3, 8, 2, 30, 0, 1_500, tzinfo=ZoneInfo("America/Chicago")),
    datetime(1969, 12, 31, 23, 59, 59, 999_000, tzinfo=UTC),  # before the epoch: floors
    datetime(2000, 1, 1, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
    datetime(2099, 12, 31, 23, 59, 59, 123_456, tzinfo=UTC),
]


def _codec_bytes(type_name: str, values: list[Any]) -> bytes:
    """What clickhouse-connect's codec writes for this column."""
    ch_type = get_from_name(type_name)
    out = bytearray()
    ctx = InsertContext("t", ["c"], [ch_type], column_oriented=True)
    ctx.start_column("c")
    ch_type.write_column(values, out, ctx)
    return bytes(out)


def test_uuid_strings_are_written_as_the_codec_writes_them() -> None:
    assert _uuid_column(None, IDS) == _codec_bytes("UUID", IDS)


@pytest.mark.parametrize(
    "values",
    [
        [IDS[0].replace("-", "")],  # no hyphens: the codec reads it
        [IDS[0], uuid.UUID(IDS[1])],  # not all strings
        [IDS[0][:-2] + " 0"],  # whitespace in the hex
        [IDS[0][:8] + "-" + IDS[0][9:] + "0"],  # a hyphen moved
        [IDS[0][:-1] + "g"],  # not hex
    ],
)
def test_uuid_values_that_are_not_canonical_strings_go_to_the_codec(values: list[Any]) -> None:
    assert _uuid_column(None, values) is None


@pytest.mark.parametrize("type_name", ["DateTime64(3, 'UTC')", "DateTime64(6)", "DateTime64(0)"])
def test_aware_datetimes_are_written_as_the_codec_writes_them(type_name: str) -> None:
    ch_type = get_from_name(type_name)
    assert _datetime64_column(ch_type, TIMES) == _codec_bytes(type_name, TIMES)


@pytest.mark.parametrize(
    "values", [[datetime(2026, 1, 1)], [TIMES[0], 1_700_000_000_000], [TIMES[0], "2026-01-01"]]
)
def test_naive_datetimes_and_other_values_go_to_the_codec(values: list[Any]) -> None:
    assert _datetime64_column(get_from_name("DateTime64(3)"), values) is None


def _decode(data: bytes) -> tuple[list[str], list[tuple[Any, ...]]]:
    class _Source:
        def __init__(self) -> None:
            self.gen = iter([data])

        def close(self) -> None:
            pass

    result = NativeTransform.parse_response(ResponseBuffer(_Source()))
    return list(result.column_names), list(result.result_rows)


TYPES = {
    "t": {
        "id": "UUID",
        "at": "DateTime64(3, 'UTC')",
        "who": "LowCardinality(String)",
        "n": "UInt32",
        "maybe": "Nullable(UUID)",
    }
}


def test_a_block_decodes_back_to_its_rows_whichever_writer_took_each_column() -> None:
    rows = [
        (IDS[i % 4], TIMES[i % 5], f"d{i % 3}", i, None if i % 2 else IDS[i % 4]) for i in range(40)
    ]
    block = NativeEncoder(TYPES).encode("t", list(TYPES["t"]), rows)
    names, decoded = _decode(block.data)
    assert names == list(TYPES["t"])
    assert block.rows == len(decoded) == 40
    for row, back in zip(rows, decoded, strict=True):
        assert str(back[0]) == row[0].lower()
        utc = row[1].astimezone(UTC)
        assert back[1].replace(tzinfo=None) == utc.replace(
            tzinfo=None, microsecond=utc.microsecond // 1000 * 1000
        )
        assert back[2:4] == row[2:4]
        assert (back[4] is None) == (row[4] is None)


def test_rows_that_do_not_fit_raise_value_error() -> None:
    encoder = NativeEncoder(TYPES)
    with pytest.raises(ValueError, match="do not fit"):
        encoder.encode("t", ["n"], [(-1,)])
    with pytest.raises(ValueError, match="same length"):
        encoder.encode("t", ["id", "n"], [(IDS[0], 1), (IDS[1],)])
    with pytest.raises(ValueError, match="do not fit"):
        encoder.encode("t", ["id"], [("not a uuid",)])
