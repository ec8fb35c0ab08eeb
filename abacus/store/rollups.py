"""Running the rollup statements and reading and writing the rollup watermark (on the store's
thread; `Store` wraps the driver's errors). The SQL is in `abacus.aggregation.rollups`.

The watermark (`rollup_watermarks`) says, per broker epoch and events partition, the next
offset such that every event stored from an earlier offset has its rollups written. Ingest
advances it after a batch's rollups and before the batch's offsets are committed; a range
of offsets stored without rollups (a worker stopped in between, the embedded broker lost
with it, a version without rollups) is closed by rebuilding every rollup of the students
whose events it holds, then the watermark moves past it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime

from clickhouse_connect.driver.client import Client

from abacus.aggregation.rollups import RollupKeys, rebuild_batch, rebuild_students_of_events
from abacus.catalog import EVENTS, ROLLUP_WATERMARKS

__all__ = [
    "close_gap",
    "rebuild",
    "repair_epochs",
    "stored_offsets",
    "watermark",
    "write_watermark",
]

log = logging.getLogger(__name__)


def rebuild(client: Client, db: str, keys: RollupKeys) -> None:
    """Rebuild the rollups of one batch's keys: lessons, then days, then months."""
    for sql, params in rebuild_batch(db, keys):
        client.command(sql, parameters=params)


def watermark(client: Client, db: str, epoch: str) -> dict[int, int]:
    """Partition → next offset whose events all have rollups, in ``epoch``."""
    rows = client.query(
        f"SELECT partition, max(next_offset) FROM {db}.{ROLLUP_WATERMARKS.name} "  # noqa: S608
        "WHERE epoch = {epoch:String} GROUP BY partition",
        parameters={"epoch": epoch},
    ).result_rows
    return {int(p): int(o) for p, o in rows}


def stored_offsets(client: Client, db: str, epoch: str | None = None) -> dict[tuple[str, int], int]:
    """(epoch, partition) → the next offset after the last event stored (one epoch, or all)."""
    where = "WHERE src_epoch = {epoch:String}" if epoch is not None else ""
    rows = client.query(
        f"SELECT src_epoch, src_partition, max(src_offset) + 1 FROM {db}.{EVENTS.name} "  # noqa: S608
        f"{where} GROUP BY src_epoch, src_partition",
        parameters={"epoch": epoch} if epoch is not None else None,
    ).result_rows
    return {(str(e), int(p)): int(o) for e, p, o in rows}


def write_watermark(client: Client, db: str, epoch: str, offsets: Mapping[int, int]) -> None:
    """Record that rollups are complete up to ``offsets`` (partition → next offset)."""
    if offsets:
        now = datetime.now(UTC)
        rows = [[epoch, p, o, now] for p, o in sorted(offsets.items())]
        client.insert(
            f"{db}.{ROLLUP_WATERMARKS.name}", rows, column_names=list(ROLLUP_WATERMARKS.columns)
        )


def close_gap(client: Client, db: str, epoch: str, partition: int, start: int, end: int) -> None:
    """Rebuild every rollup of the students with events at offsets [start, end) of
    ``partition`` in ``epoch`` (which were stored without their rollups)."""
    params = {"epoch": epoch, "partition": partition, "start": start, "end": end}
    for sql in rebuild_students_of_events(db):
        client.command(sql, parameters=params)


def repair_epochs(client: Client, db: str, current: str) -> int:
    """At worker start: close every gap between the events stored and the watermark in the
    broker epochs before ``current`` (records a worker had stored but not rolled up when an
    embedded broker was lost). The current epoch's gaps are read again from the broker, or
    closed by ingest (`streams.rollups`). Returns how many partitions were repaired."""
    stored = stored_offsets(client, db)
    repaired = 0
    for epoch in sorted({e for e, _ in stored if e != current}):
        marks = watermark(client, db, epoch)
        gaps = {p: end for (e, p), end in stored.items() if e == epoch and marks.get(p, 0) < end}
        for partition, end in sorted(gaps.items()):
            close_gap(client, db, epoch, partition, marks.get(partition, 0), end)
        write_watermark(client, db, epoch, gaps)
        repaired += len(gaps)
    if repaired:
        log.info("rollups repaired for %d partition(s) of earlier broker epochs", repaired)
    return repaired
