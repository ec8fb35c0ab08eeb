"""Where ingest batches are prepared: spawned ingest processes, or the worker itself."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime

from abacus.ingest.prepare import (
    PreparedBatch,
    RawRecord,
    prepare_batch,
    prepare_in_process,
    start_process,
)
from abacus.privacy.deny import BatchDeny
from abacus.store.native import NativeEncoder, TableTypes

__all__ = ["BatchPreparer", "default_processes"]


def default_processes() -> int:
    """One ingest process per core, up to four.

    The worker's own process only fetches, hands over bytes and commits, and ClickHouse
    parses Native blocks in C++, so they need little CPU of their own: on 2 cores, two
    ingest processes did 52k events/s where one did 30k (`abacus bench ingest`).
    """
    return min(4, os.cpu_count() or 1)


class BatchPreparer:
    """`prepare_batch` in ``processes`` spawned processes, or inline when 0.

    Spawned, not forked: the worker has threads (chDB, the store's thread) by the time the
    pool starts. Each process dies with the worker (PDEATHSIG). Records cross to it as
    plain `RawRecord` tuples, the cheapest thing to pickle (docs/architecture.md).
    """

    def __init__(self, processes: int, types: TableTypes) -> None:
        self.processes = processes
        self._encoder = NativeEncoder(types) if processes == 0 else None
        self._pool = (
            ProcessPoolExecutor(
                max_workers=processes,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=start_process,
                initargs=(dict(types),),
            )
            if processes > 0
            else None
        )

    async def start(self) -> None:
        """Start every process now, so the first batch does not wait for imports."""
        if self._pool is None:
            return
        loop = asyncio.get_running_loop()
        await asyncio.gather(
            *(loop.run_in_executor(self._pool, os.getpid) for _ in range(self.processes))
        )

    async def prepare(
        self,
        records: Sequence[RawRecord],
        zones: Mapping[str, str],
        now: datetime,
        epoch: str,
        *,
        deny: BatchDeny | None = None,
    ) -> PreparedBatch:
        if self._pool is None:
            assert self._encoder is not None
            return prepare_batch(records, zones, now, self._encoder, epoch, deny=deny)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._pool, prepare_in_process, list(records), dict(zones), now, epoch, deny
        )

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
