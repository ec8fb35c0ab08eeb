"""How fast the machine's CPUs ran while each side of a benchmark was timed.

On a shared VM a CPU's speed is not fixed. On the 2-core KVM machine these benchmarks run
on, a fixed unit of single-threaded Python work took 13 ms of CPU time in some seconds and
21-22 ms in others (2026-12-03): each vCPU switched between the two states every few
seconds, independently of the other and of the load on it, with no steal time counted.
A side timed for two seconds lands in whatever state the machine is in, so the same
loader run twice in one round of `abacus bench ingest` did 105k and 70k events/s.

`HostSpeed` runs a probe pinned to each CPU for the whole benchmark: every
`PROBE_EVERY_S` it times a fixed unit of work (about 0.5 ms of CPU, about 1% of the CPU)
and writes the CPU time it took, with how busy its CPU was in the pause before it.
`window_ms` is the mean of those times over a window, all CPUs together (lower is faster),
counting only the units that ran on a busy CPU (`BUSY_MIN`) when there are any. A vCPU
that was idle runs slower for a while: the unit took 1.28-1.31 ms on an idle vCPU against
0.87-1.03 ms on one kept busy by another process (2026-12-04, both probes for 8 s, twice),
so a loader keeping one CPU busy and the other idle looked like a slower host than a
worker keeping both busy, by ~15%. A rate measured in a window scales with the speed of
the CPUs it ran on, so two sides' ratio at equal host speed (`at_equal_speed`) is their
ratio times the probe times' ratio: what the ratio would have been had both run in the
same state. It is an estimate, for reading a ratio; the targets stay on the ratio
measured.

Run as ``python -m abacus.bench.host_speed CPU FILE EVERY_S`` (one probe); Linux only.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType

from abacus.lifecycle import die_with_parent

__all__ = [
    "BUSY_MIN",
    "PROBE_EVERY_S",
    "HostSpeed",
    "at_equal_speed",
    "cpu_ticks",
    "probe",
    "runs_ms",
    "window_ms",
]

PROBE_EVERY_S = 0.05
_MAX_PROBES = 8  # on a bigger machine, its first 8 CPUs stand for all (14 MB a probe)
_UNIT = 10_000  # loop iterations of one unit of work: ~0.5 ms of CPU on the 2-core VM

BUSY_MIN = 0.5  # a unit counts when its CPU was busy at least half the pause before it
_PROC_STAT = Path("/proc/stat")

# (wall time the unit started, CPU milliseconds it took, busy share of its CPU before it)
Sample = tuple[float, float, float]


def _unit() -> int:
    total = 0
    for i in range(_UNIT):
        total += i * i % 7
    return total


def cpu_ticks(cpu: int, stat: str) -> tuple[int, int]:
    """(busy, all) clock ticks so far of ``cpu`` from the text of /proc/stat; idle and
    iowait are not busy."""
    for line in stat.splitlines():
        name, *fields = line.split()
        if name == f"cpu{cpu}":
            ticks = [int(f) for f in fields]
            return sum(ticks) - ticks[3] - ticks[4], sum(ticks)
    raise ValueError(f"no cpu{cpu} in /proc/stat")


def probe(cpu: int, out: Path, every_s: float = PROBE_EVERY_S) -> None:
    """Pinned to ``cpu``: time a unit of work every ``every_s``, one line per unit to
    ``out`` (with how busy the CPU was in the pause before it), until killed."""
    os.sched_setaffinity(0, {cpu})
    before = cpu_ticks(cpu, _PROC_STAT.read_text())
    with out.open("a", buffering=1) as lines:
        while True:
            time.sleep(every_s)
            now = cpu_ticks(cpu, _PROC_STAT.read_text())
            busy, ticks = now[0] - before[0], now[1] - before[1]
            wall, cpu_s = time.time(), time.process_time()
            _unit()
            ms = (time.process_time() - cpu_s) * 1000
            lines.write(f"{wall:.3f} {ms:.4f} {busy / ticks if ticks else 0.0:.2f}\n")
            before = cpu_ticks(cpu, _PROC_STAT.read_text())


def window_ms(samples: Iterable[Sample], start: float, end: float) -> float | None:
    """The mean CPU time of a unit of work started in [start, end] (wall time, any CPU):
    of the units on a busy CPU (`BUSY_MIN`), or of all when none was; None when no probe
    ran in the window."""
    inside = [(ms, busy) for wall, ms, busy in samples if start <= wall <= end]
    on_busy = [ms for ms, busy in inside if busy >= BUSY_MIN]
    if on_busy:
        return statistics.fmean(on_busy)
    return statistics.fmean(ms for ms, _ in inside) if inside else None


def runs_ms(runs: Iterable[tuple[float | None, float]]) -> float | None:
    """The probe time of a side timed in several windows ((probe ms, seconds) each): their
    mean weighted by time, over the windows a probe ran in; None when none did."""
    known = [(ms, seconds) for ms, seconds in runs if ms is not None]
    time_s = sum(seconds for _, seconds in known)
    return sum(ms * seconds for ms, seconds in known) / time_s if time_s > 0 else None


def at_equal_speed(ratio: float, side_ms: float | None, baseline_ms: float | None) -> float | None:
    """A side's ratio to its baseline had both run at the same host speed: a rate scales
    with the speed (1 / probe time) of its window. None without both probe times."""
    if not side_ms or not baseline_ms:
        return None
    return ratio * side_ms / baseline_ms


class HostSpeed:
    """A probe per CPU this process may run on (the first `_MAX_PROBES`), from ``with``
    until its end."""

    def __init__(self, every_s: float = PROBE_EVERY_S) -> None:
        self.every_s = every_s
        self._dir = Path(tempfile.mkdtemp(prefix="abacus-host-speed-"))
        self._probes: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> HostSpeed:
        for cpu in sorted(os.sched_getaffinity(0))[:_MAX_PROBES]:
            self._probes.append(
                subprocess.Popen(  # noqa: S603 - our own module
                    [
                        sys.executable,
                        "-m",
                        "abacus.bench.host_speed",
                        str(cpu),
                        str(self._dir / f"cpu{cpu}.txt"),
                        str(self.every_s),
                    ],
                    preexec_fn=die_with_parent,  # never outlives the benchmark
                )
            )
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        for proc in self._probes:
            proc.kill()
            proc.wait()
        for path in self._dir.glob("*.txt"):
            path.unlink()
        self._dir.rmdir()

    def samples(self) -> list[Sample]:
        """Every probe's units so far."""
        out: list[Sample] = []
        for path in sorted(self._dir.glob("cpu*.txt")):
            # The last piece is a line still being written (or empty): left for later.
            for line in path.read_text().split("\n")[:-1]:
                wall, ms, busy = line.split()
                out.append((float(wall), float(ms), float(busy)))
        return out

    def window_ms(self, window: Sequence[float]) -> float | None:
        """`window_ms` of the probes' units so far over ``window`` (start, end)."""
        return window_ms(self.samples(), window[0], window[1])


if __name__ == "__main__":
    probe(int(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3]))
