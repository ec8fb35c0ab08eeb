"""Running the rollup statements and reading and writing the rollup marks (on the store's
thread; `Store` wraps the driver's errors). The SQL is in `abacus.aggregation.rollups`, the
rules in `abacus.aggregation.closing`.

`rollup_watermarks` holds two kinds of mark, each only growing: per district, ``closed``
= the last local day (a day number) whose rollups were built when it closed; for district
'', ``dirty`` = the last `rollup_dirty` sequence number whose keys were rebuilt.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

from clickhouse_connect.driver.client import Client

from abacus.aggregation.closing import LateKey
from abacus.aggregation.rollups import RollupKeys, close_days, rebuild_batch
from abacus.catalog import ROLLUP_DIRTY, ROLLUP_WATERMARKS

__all__ = [
    "BACKGROUND",
    "CLOSED",
    "DIRTY",
    "close",
    "closed_days",
    "day_number",
    "dirty_seq",
    "late_keys",
    "pending_seq",
    "prune_dirty",
    "rebuild",
    "write_dirty",
    "write_mark",
]

CLOSED = "closed"
DIRTY = "dirty"
_DAY0 = date(1970, 1, 1)
# Rebuilds are background work: their query threads run at the lowest CPU priority (Linux
# nice 19), so on a busy machine ingest's inserts and the worker's own threads run first
# and the rollups take the CPU that is left; a pass an export waits for runs at normal
# priority. ClickHouse applies it with CAP_SYS_NICE and ignores it without (the rebuild
# then competes as an equal).
BACKGROUND = {"os_thread_priority": 19}


def rebuild(client: Client, db: str, keys: RollupKeys, background: bool = True) -> None:
    """Rebuild the rollups of ``keys``: lessons, then days, then months (``background``:
    at the lowest CPU priority)."""
    for sql, params in rebuild_batch(db, keys):
        client.command(sql, parameters=params, settings=_priority(background))


def close(
    client: Client,
    db: str,
    district: str,
    after: date | None,
    through: date,
    background: bool = True,
) -> None:
    """Build the rollups of ``district``'s days (after, through], then mark them closed."""
    for sql, params in close_days(db, district, after, through):
        client.command(sql, parameters=params, settings=_priority(background))
    write_mark(client, db, district, CLOSED, day_number(through))


def _priority(background: bool) -> dict[str, int]:
    return BACKGROUND if background else {}


def day_number(day: date) -> int:
    """A day as the value of a ``closed`` mark."""
    return (day - _DAY0).days


def prune_dirty(client: Client, db: str, through: int) -> None:
    """Delete the late keys with sequence numbers up to ``through`` (all rebuilt)."""
    client.command(
        f"DELETE FROM {db}.{ROLLUP_DIRTY.name} WHERE seq <= {{t:UInt64}}",  # noqa: S608
        parameters={"t": through},
    )


def write_mark(client: Client, db: str, district: str, mark: str, value: int) -> None:
    client.insert(
        f"{db}.{ROLLUP_WATERMARKS.name}",
        [[district, mark, value, datetime.now(UTC)]],
        column_names=list(ROLLUP_WATERMARKS.columns),
    )


def closed_days(client: Client, db: str) -> dict[str, date]:
    """District → the last day whose rollups were built when it closed."""
    rows = client.query(
        f"SELECT district_id, max(value) FROM {db}.{ROLLUP_WATERMARKS.name} "  # noqa: S608
        "WHERE mark = {m:String} GROUP BY district_id",
        parameters={"m": CLOSED},
    ).result_rows
    return {str(d): _DAY0 + timedelta(days=int(v)) for d, v in rows}


def dirty_seq(client: Client, db: str) -> tuple[int, int]:
    """(the last sequence number whose late keys were rebuilt, the last one written)."""
    done = client.query(
        f"SELECT max(value) FROM {db}.{ROLLUP_WATERMARKS.name} "  # noqa: S608
        "WHERE district_id = '' AND mark = {m:String}",
        parameters={"m": DIRTY},
    ).result_rows[0][0]
    written = client.query(f"SELECT max(seq) FROM {db}.{ROLLUP_DIRTY.name}").result_rows[0][0]  # noqa: S608
    return int(done or 0), int(written or 0)


def pending_seq(client: Client, db: str, district: str) -> int:
    """The last sequence number of ``district``'s late keys written (0: none)."""
    rows = client.query(
        f"SELECT max(seq) FROM {db}.{ROLLUP_DIRTY.name} "  # noqa: S608
        "WHERE district_id = {d:String}",
        parameters={"d": district},
    ).result_rows
    return int(rows[0][0] or 0)


def write_dirty(client: Client, db: str, seq: int, keys: Sequence[LateKey]) -> None:
    """Record late keys under sequence number ``seq`` (before their facts are stored)."""
    client.insert(
        f"{db}.{ROLLUP_DIRTY.name}",
        [(seq, *key) for key in keys],
        column_names=list(ROLLUP_DIRTY.columns),
    )


def late_keys(client: Client, db: str, after: int, through: int) -> list[LateKey]:
    """The late keys written with sequence numbers in (after, through], each once."""
    rows = client.query(
        f"SELECT DISTINCT district_id, student_id, local_date, lesson_id "  # noqa: S608
        f"FROM {db}.{ROLLUP_DIRTY.name} "
        "WHERE seq > {a:UInt64} AND seq <= {t:UInt64}",
        parameters={"a": after, "t": through},
    ).result_rows
    return [(str(d), str(s), day, str(lesson)) for d, s, day, lesson in rows]
