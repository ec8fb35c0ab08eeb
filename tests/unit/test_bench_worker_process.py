"""A benchmark's worker is stopped with everything it started: nothing of a run is left
running when the next one starts (real processes, no mocks)."""

from __future__ import annotations

import subprocess
import sys

from abacus.bench.worker_process import group_members, stop_worker

# A stand-in for the worker: it may ignore SIGTERM, and may start a child (as the worker
# starts its ingest processes) that ignores SIGTERM and outlives it.
_WORKER = """
import signal, subprocess, sys, time
if "deaf" in sys.argv:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if "child" in sys.argv:
    subprocess.Popen([sys.executable, "-c", "import signal, time; "
        "signal.signal(signal.SIGTERM, signal.SIG_IGN); print('child', flush=True); "
        "time.sleep(60)"])
print("worker", flush=True)
time.sleep(60)
"""


def _start(*flags: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _WORKER, *flags], stdout=subprocess.PIPE, start_new_session=True
    )
    assert proc.stdout is not None
    expected = {b"worker\n", b"child\n"} if "child" in flags else {b"worker\n"}
    assert {proc.stdout.readline() for _ in expected} == expected  # both running, set up
    return proc


def _stop(proc: subprocess.Popen[bytes], grace_s: float, linger_s: float) -> list[int]:
    try:
        return stop_worker(proc, grace_s=grace_s, linger_s=linger_s)
    finally:
        assert proc.stdout is not None
        proc.stdout.close()


def test_a_worker_that_stops_on_sigterm_leaves_nothing_and_nothing_is_killed() -> None:
    proc = _start()
    assert group_members(proc.pid) == [proc.pid]
    assert _stop(proc, grace_s=10, linger_s=1) == []
    assert proc.returncode == -15
    assert group_members(proc.pid) == []


def test_a_child_left_behind_by_the_worker_is_killed_before_returning() -> None:
    proc = _start("child")
    [child] = [pid for pid in group_members(proc.pid) if pid != proc.pid]
    assert _stop(proc, grace_s=10, linger_s=0.5) == [child]
    assert group_members(proc.pid) == []


def test_a_worker_deaf_to_sigterm_is_killed_after_the_grace() -> None:
    proc = _start("deaf", "child")
    members = group_members(proc.pid)
    assert len(members) == 2
    assert sorted(_stop(proc, grace_s=0.5, linger_s=0.5)) == sorted(members)
    assert proc.returncode == -9
    assert group_members(proc.pid) == []
