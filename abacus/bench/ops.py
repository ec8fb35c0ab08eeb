"""`abacus bench ops`: what the lag monitor and the /ops page cost ingest, in one run.

On a fresh embedded broker, events are pre-loaded once; then workers (each with a fresh
home and its own consumer group, so each reads the whole topic) ingest them, alternating:
- baseline: the lag monitor effectively off (its interval set to a day), nobody polling;
- product: the lag monitor at its shipped interval, and `/portal/ops` fetched every
  second with the operator token, as an open page's refresh would (each answer checked).
Each worker's clock runs from its first batch handed over until its group has committed
every offset (as in `abacus bench ingest`). Printed: events/s of every run, the median per
path, their ratio.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from abacus.bench.ingest import _env, _wait_committed, _wait_first_batch, _wait_ready
from abacus.bench.ingest_data import make_events, produce
from abacus.bench.report import report
from abacus.embedded.broker import EmbeddedBroker, free_port
from abacus.kafka.topics import ensure_topics
from abacus.settings import AbacusSettings

__all__ = ["run_ops_bench"]

_TOKEN = "bench-ops-token-0123456789abcdef"  # noqa: S105 - the bench worker's own
_OFF_S = "86400"  # a day: the monitor's first tick never comes within a run


class _Poller(threading.Thread):
    """GET ``url`` every ``every_s`` with the operator token; counts good answers."""

    def __init__(self, url: str, every_s: float) -> None:
        super().__init__(daemon=True)
        self.url, self.every_s = url, every_s
        self.stop = threading.Event()
        self.ok = self.failed = 0

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {_TOKEN}"}
        request = urllib.request.Request(self.url, headers=headers)  # noqa: S310 - our own web
        while not self.stop.wait(self.every_s):
            try:
                with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310 - our own web
                    good = resp.status == 200 and b"Records behind" in resp.read()
            except OSError:
                good = False
            self.ok += good
            self.failed += not good


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its live children (the ingest processes)."""
    tick = os.sysconf("SC_CLK_TCK")
    proc = Path(f"/proc/{pid}")
    children = [
        int(child)
        for task in (proc / "task").iterdir()
        for child in (task / "children").read_text().split()
    ]
    total = 0.0
    for one in (pid, *children):
        try:
            stat = Path(f"/proc/{one}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def _one_worker(
    settings: AbacusSettings, root: Path, name: str, ends: dict[int, int], *, ops: bool
) -> dict[str, Any]:
    port = free_port()
    extra = {
        "ABACUS_APP_ID": name,
        "ABACUS_WEB__PORT": str(port),
        "ABACUS_WEB__OPS_TOKEN": _TOKEN,
    }
    if not ops:
        extra["ABACUS_LAG_INTERVAL_S"] = _OFF_S
    env = _env(root / name, settings.broker.servers, extra)
    web = f"http://127.0.0.1:{port}"
    log = root / f"{name}.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "abacus", "worker"], env=env, stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    poller = _Poller(f"{web}/portal/ops", 1.0) if ops else None
    try:
        # From the first batch handed over, as `abacus bench ingest` clocks: at readiness a
        # small topic can be stored already (seen: 0.0 CPU seconds in the window).
        started = _wait_first_batch(proc, env, log)
        cpu = _cpu_seconds(proc.pid)
        _wait_ready(proc, web, log)
        if poller is not None:
            poller.start()
        _wait_committed(settings, f"{name}-ingest", ends)
        seconds = time.perf_counter() - started
        cpu = _cpu_seconds(proc.pid) - cpu
    finally:
        if poller is not None:
            poller.stop.set()
            poller.join(timeout=15)
        proc.terminate()
        proc.wait(timeout=60)
    return {
        "seconds": seconds,
        "cpu_s": cpu,
        "polls_ok": poller.ok if poller else 0,
        "polls_failed": poller.failed if poller else 0,
    }


def run_ops_bench(*, events: int, rounds: int, out_dir: Path) -> dict[str, Any]:
    """``rounds`` pairs of (baseline, product) on the same pre-loaded topic; the medians' ratio."""
    data = make_events(events)
    runs: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(prefix="abacus-bench-ops-") as tmp,
        EmbeddedBroker(port=free_port()) as broker,
    ):
        root = Path(tmp)
        settings = AbacusSettings(
            home=root / "produce", broker={"bootstrap": broker.bootstrap},
            topics={"prefix": "bench."},
        )  # fmt: skip
        ensure_topics(settings)
        ends = asyncio.run(produce(settings, data, True))
        for n in range(rounds):
            # ABBA: a machine slowing down (or speeding up) during the run hits both alike.
            for ops in (False, True) if n % 2 == 0 else (True, False):
                name = f"bench-{'ops' if ops else 'base'}-{n}"
                result = _one_worker(settings, root, name, ends, ops=ops)
                runs.append({"ops": ops, **result, "events_per_s": len(data) / result["seconds"]})
    base = statistics.median(r["events_per_s"] for r in runs if not r["ops"])
    product = statistics.median(r["events_per_s"] for r in runs if r["ops"])
    rows = [
        {
            "path": "lag monitor + /ops polled every 1 s" if r["ops"] else "baseline: neither",
            "round": i // 2 + 1,
            "events": len(data),
            "seconds": r["seconds"],
            "events_per_s": r["events_per_s"],
            "ratio": r["events_per_s"] / base,
            "worker_cpu_s": r["cpu_s"],
            "cpu_ms_per_1k_events": 1e6 * r["cpu_s"] / len(data),
            "ops_polls_ok": r["polls_ok"] if r["ops"] else "",
            "ops_polls_failed": r["polls_failed"] if r["ops"] else "",
        }
        for i, r in enumerate(runs)
    ]
    ratio = product / base
    cpu_base = statistics.median(r["cpu_s"] for r in runs if not r["ops"])
    cpu_ops = statistics.median(r["cpu_s"] for r in runs if r["ops"])
    extra = {"median_baseline_events_per_s": base, "median_ops_events_per_s": product,
             "ratio": ratio, "cost_percent": (1 - ratio) * 100,
             "median_baseline_cpu_s": cpu_base, "median_ops_cpu_s": cpu_ops}  # fmt: skip
    report("ops", rows, out_dir, extra)
    print(
        f"median events/s: baseline {base:,.0f}, with lag monitor + /ops {product:,.0f}; "
        f"ratio {ratio:.3f} (cost {(1 - ratio) * 100:+.1f}%, target <= 2%); worker CPU "
        f"seconds (median) {cpu_base:.1f} vs {cpu_ops:.1f}: {cpu_ops / cpu_base - 1:+.1%}"
    )
    failed = sum(r["polls_failed"] for r in runs)
    if failed:
        raise RuntimeError(f"{failed} /ops poll(s) failed during the run")
    return {"rows": rows, "ratio": ratio}
