"""When the rollup service runs its passes: the first one too waits for ingest's backlog,
and none waits once the backlog is gone (the pass itself is a stand-in: no store)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

from abacus.privacy.deny import DenyList
from abacus.settings import AbacusSettings
from streams.metrics import Metrics
from streams.rollups import LateKeyLog, RollupService


async def _passes_while(backlog: list[bool], tmp_path: Path) -> list[float]:
    """Run the service's schedule: the backlog for 0.5 s, then none for up to 5 s; the
    seconds after start at which passes ran."""
    settings = AbacusSettings(
        home=tmp_path, exports={"rollup_interval_s": 0.05, "rollup_max_defer_s": 60.0}
    )
    late = LateKeyLog(None)  # type: ignore[arg-type]  # enabled; never written here
    service = RollupService(
        settings, None, late, dict, Metrics(), DenyList(),  # type: ignore[arg-type]
        ingest_backlog=lambda: backlog[0],
    )  # fmt: skip
    started = time.monotonic()
    passes: list[float] = []
    after_backlog = asyncio.Event()

    async def run_once(*, background: bool = True) -> None:
        passes.append(time.monotonic() - started)
        if not backlog[0]:
            after_backlog.set()

    service.run_once = run_once  # type: ignore[method-assign]
    loop = asyncio.ensure_future(type(service)._every_interval(service))
    try:
        await asyncio.sleep(0.5)
        backlog[0] = False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(after_backlog.wait(), 5.0)
    finally:
        loop.cancel()
    return passes


async def test_the_first_pass_waits_for_ingest_backlog_then_runs(tmp_path: Path) -> None:
    passes = await _passes_while([True], tmp_path)
    assert passes, "no pass ran after the backlog was gone"
    assert passes[0] >= 0.5  # not at start, while ingest had a backlog


async def test_without_a_backlog_the_first_pass_runs_at_start(tmp_path: Path) -> None:
    passes = await _passes_while([False], tmp_path)
    assert passes
    assert passes[0] < 0.5
