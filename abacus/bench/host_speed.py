"""How fast the machine's CPUs ran while each side of a benchmark was timed.

On a shared VM a CPU's speed is not fixed. On the 2-core KVM machine these benchmarks run
on, a fixed unit of single-threaded Python work took 13 ms of CPU time in some seconds and
21-22 ms in others (2026-12-03): each vCPU switched between the two states every few
seconds, independently of the other and of the load on it, with no steal time counted.
A side timed for two seconds lands in whatever state the machine is in, so the same
loader run twice in one round of `abacus bench ingest` did 105k and 70k events/s.

`HostSpeed` runs a probe pinned to each CPU for the whole benchmark: every
`PROBE_EVERY_S` it times a fixed unit of work (about 0.5 ms of CPU, about 1% of the CPU)
and writes the CPU time it took. `window_ms` is the mean of those times over a window,
all CPUs together (lower is faster). A rate measured in a window scales with the speed
of the CPUs it ran on, so two sides' ratio at equal host speed (`at_equal_speed`) is
their ratio times the probe times' ratio: what the ratio would have been had both run in
the same state. It is an estimate, for reading a ratio; the targets stay on the ratio
measured.

Run as ``python -m abacus.bench.host_speed CPU FILE`` (one probe); Linux only.
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

__all__ = ["PROBE_EVERY_S", "HostSpeed", "at_equal_speed", "probe", "runs_ms", "window_ms"]

PROBE_EVERY_S = 0.05
_MAX_PROBES = 8  # on a bigger machine, its first 8 CPUs stand for all (14 MB a probe)
_UNIT = 10_000  # loop iterations of one unit of work: ~0.5 ms of CPU on the 2-core VM

Sample = tuple[float, float]  # (wall time the unit started, CPU milliseconds it took)


def _unit() -> int:
    total = 0
    for i in range(_UNIT):
        total += i * i % 7
    return total


def probe(cpu: int, out: Path, every_s: float = PROBE_EVERY_S) -> None:
    """Pinned to ``cpu``: time a unit of work every ``every_s``, one line per unit to
    ``out``, until killed."""
    os.sched_setaffinity(0, {cpu})
    with out.open("a", buffering=1) as lines:
        while True:
            wall, cpu_s = time.time(), time.process_time()
            _unit()
            lines.write(f"{wall:.3f} {(time.process_time() - cpu_s) * 1000:.4f}\n")
            time.sleep(every_s)


def window_ms(samples: Iterable[Sample], start: float, end: float) -> float | None:
    """The mean CPU time of a unit of work started in [start, end] (wall time, any CPU);
    None when no probe ran in the window."""
    inside = [ms for wall, ms in samples if start <= wall <= end]
    return statistics.fmean(inside) if inside else None


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
                wall, ms = line.split()
                out.append((float(wall), float(ms)))
        return out

    def window_ms(self, window: Sequence[float]) -> float | None:
        """`window_ms` of the probes' units so far over ``window`` (start, end)."""
        return window_ms(self.samples(), window[0], window[1])


if __name__ == "__main__":
    probe(int(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3]))
