"""A benchmark's worker process and every process it starts, from start to gone.

The worker spawns its ingest processes and multiprocessing's resource tracker; a
benchmark runs one worker after another on the same two cores, so a run starts only once
nothing of the run before it is left. The worker starts in a process group of its own (its
children join it) and dies with the benchmark (PR_SET_PDEATHSIG), so a benchmark that is
killed leaves no worker behind. `stop_worker` sends SIGTERM (the worker drains), kills it
after ``grace_s``, then waits until no process of its group is left, killing what lingers.
Linux only, like the rest of the benchmarks (`/proc`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from abacus.lifecycle import die_with_parent

__all__ = ["group_members", "start_worker", "stop_worker"]

_LINGER_S = 10.0  # for the group's other processes once the worker has exited


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`abacus worker` with ``env``, output to ``log``, leading a process group of its own."""
    return subprocess.Popen(
        [sys.executable, "-m", "abacus", "worker"],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its group: the worker and what it starts, nothing else
        preexec_fn=die_with_parent,
    )


def group_members(pgid: int) -> list[int]:
    """The processes of process group ``pgid`` still running (zombies not counted)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        state, _ppid, pgrp = stat.rsplit(")", 1)[1].split()[:3]
        if int(pgrp) == pgid and state not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def _wait_gone(pgid: int, seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while (left := group_members(pgid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def stop_worker(
    proc: subprocess.Popen[bytes], grace_s: float, linger_s: float = _LINGER_S
) -> list[int]:
    """SIGTERM, SIGKILL after ``grace_s``; return once the worker (``proc``, leading its
    process group) and every process of its group are gone, those still there
    ``linger_s`` after the worker killed. Returns the pids that had to be killed (empty
    when all stopped on their own); RuntimeError if any is still there after SIGKILL."""
    killed: list[int] = []
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            killed.append(proc.pid)
            proc.kill()
            proc.wait()
    left = _wait_gone(proc.pid, linger_s)  # its children: PDEATHSIG, the tracker's EOF
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        except ProcessLookupError:
            pass
    if left and (still := _wait_gone(proc.pid, 5.0)):
        raise RuntimeError(f"worker processes {still} are still running after SIGKILL")
    return killed
