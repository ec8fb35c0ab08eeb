"""Ingest's half of the rollups: after a batch's facts, rebuild the keys it touched and move
the watermark, before its offsets are committed (abacus/store/rollups.py has the why).

The watermark of each partition is kept here as ingest last wrote it. The first batch of a
partition after the worker started or got the partition checks it against the table: if
the group's committed offset was ahead of the watermark (events committed by a version
without rollups, or by a benchmark run without them), that gap is closed first by
rebuilding every rollup of the students whose events lie in it. Later batches of the same
partition follow on from this worker's own, so they open no gap; offsets committed past
records nobody reads (a transaction's marker) move the watermark too.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from abacus.aggregation.rollups import RollupKeys
from abacus.store.store import Store

__all__ = ["RollupMaintainer"]

log = logging.getLogger(__name__)


class RollupMaintainer:
    """Rollups and watermark of one ingest service, in one broker epoch."""

    def __init__(self, store: Store, epoch: str, *, enabled: bool = True) -> None:
        self.store = store
        self.epoch = epoch
        # False only for `abacus bench ingest`'s comparison run (ABACUS_BENCH_SKIP_ROLLUPS).
        self.enabled = enabled
        self._marks: dict[int, int] | None = None
        self._continued: set[int] = set()  # partitions whose batches follow on from ours

    async def _watermark(self) -> dict[int, int]:
        if self._marks is None:
            self._marks = await self.store.arollup_watermark(self.epoch)
        return self._marks

    async def after_batch(
        self,
        keys: RollupKeys,
        starts: Mapping[int, int],
        ends: Mapping[int, int],
        assigned: set[int],
    ) -> None:
        """A batch holding offsets [starts[p], ends[p]) per partition is stored, while this
        worker holds ``assigned``: close a gap before it, rebuild its keys, advance the
        watermark."""
        if not self.enabled:
            return
        self._continued &= assigned  # a partition lost and got back is checked again
        first = {p: s for p, s in starts.items() if p not in self._continued}
        if first:
            marks = await self.store.arollup_watermark(self.epoch)
            await self._watermark()
            assert self._marks is not None
            self._marks.update(marks)
            for partition, start in sorted(first.items()):
                known = marks.get(partition, 0)
                if known < start:
                    log.info(
                        "closing a rollup gap in partition %d: offsets %d-%d",
                        partition, known, start - 1,
                    )  # fmt: skip
                    await self.store.aclose_rollup_gap(self.epoch, partition, known, start)
        await self.store.arebuild_rollups(keys)
        await self.advance(ends)
        self._continued |= set(starts)

    async def advance(self, ends: Mapping[int, int]) -> None:
        """Every event before ``ends`` (partition → next offset) has its rollups."""
        if not self.enabled:
            return
        marks = await self._watermark()
        moved = {p: o for p, o in ends.items() if o > marks.get(p, 0)}
        if moved:
            await self.store.awrite_rollup_watermark(self.epoch, moved)
            marks.update(moved)
