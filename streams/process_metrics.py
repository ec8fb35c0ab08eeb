"""Memory of the worker's child processes (its ingest processes), read from /proc."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["ChildProcessesCollector", "children_rss_bytes"]

_PROC = Path("/proc")


def _parent_of(stat: str) -> int:
    # /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold spaces and parentheses.
    return int(stat[stat.rindex(")") + 2 :].split()[1])


def children_rss_bytes(pid: int, proc: Path = _PROC) -> tuple[int, int] | None:
    """(number of direct children of ``pid``, their summed resident memory in bytes), or
    None where there is no /proc (not Linux)."""
    if not (proc / "self").exists():
        return None
    page = os.sysconf("SC_PAGE_SIZE")
    count = rss = 0
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if _parent_of((entry / "stat").read_text()) != pid:
                continue
            rss += int((entry / "statm").read_text().split()[1]) * page
        except (OSError, ValueError, IndexError):
            continue  # the process ended while we looked
        count += 1
    return count, rss


class ChildProcessesCollector(Collector):
    """``abacus_child_processes{,_resident_memory}`` at each scrape: the worker's own
    memory is ``process_resident_memory_bytes``; its ingest processes (and
    multiprocessing's resource tracker) are separate processes, counted here."""

    def collect(self) -> Iterator[Metric]:
        found = children_rss_bytes(os.getpid())
        if found is None:
            return
        count, rss = found
        yield GaugeMetricFamily(
            "abacus_child_processes_resident_memory_bytes",
            "Resident memory of the worker's child processes (ingest processes), summed.",
            value=rss,
        )
        yield GaugeMetricFamily(
            "abacus_child_processes", "Child processes of the worker.", value=count
        )
