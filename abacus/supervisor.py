"""`abacus up`'s supervisor: the worker runs as a child process and is restarted if it dies.

chDB allows one engine per process, so the worker process owns ClickHouse and `abacus up`
never opens it: it only starts, watches and stops the worker (and, in embedded mode, the
broker, which outlives every worker restart). A worker that exits on its own is started
again after a backoff that doubles up to ``supervisor.backoff_max_s`` and resets once a
worker has stayed up ``stable_after_s``. Exit status 78 (records it cannot read, see
`streams.ingest_stop`) is final: a restart would fail the same way.

SIGTERM or Ctrl-C stops it cleanly: the worker gets SIGTERM and drains (reads until its
lag is 0, stores, commits); only after it has exited does the caller stop the broker. The
worker runs in its own session, so a terminal's Ctrl-C reaches only `abacus up`, which
decides the order; it dies with `abacus up` (PR_SET_PDEATHSIG) if that is killed.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import FrameType

from abacus.lifecycle import EXIT_FINAL, die_with_parent
from abacus.settings import AbacusSettings

__all__ = ["EXIT_FINAL", "WorkerSupervisor", "backoff_delays"]

log = logging.getLogger(__name__)

_STOP_GRACE_S = 90.0  # beyond the drain timeout, before a stopping worker is killed


def backoff_delays(initial: float, maximum: float) -> Iterator[float]:
    """initial, 2·initial, 4·initial, … capped at maximum."""
    delay = initial
    while True:
        yield min(delay, maximum)
        delay = min(delay * 2, maximum)


@dataclass
class WorkerSupervisor:
    """Run ``command`` (the worker) until asked to stop; restart it when it dies."""

    settings: AbacusSettings
    command: list[str] = field(default_factory=lambda: [sys.executable, "-m", "abacus", "worker"])
    broker_alive: Callable[[], bool] = lambda: True
    restarts: int = 0
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def run(self) -> int:
        """Block until SIGTERM/SIGINT (then 0, or the worker's own failing status) or a
        final failure; returns the exit status for `abacus up`."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in _SIGNALS}
        try:
            return self._loop()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _loop(self) -> int:
        s = self.settings.supervisor
        delays = backoff_delays(s.backoff_initial_s, s.backoff_max_s)
        while True:
            started = time.monotonic()
            code = self._run_once()
            if self._stop.is_set():
                return code
            if code == EXIT_FINAL:
                log.error("worker stopped for good (exit status %d); not restarting", code)
                return code
            if not self.broker_alive():
                log.error("the embedded broker has died; stopping")
                return 1
            if time.monotonic() - started >= s.stable_after_s:
                delays = backoff_delays(s.backoff_initial_s, s.backoff_max_s)
            delay = next(delays)
            self.restarts += 1
            log.warning(
                "worker exited with status %s; restart %d in %.1fs", code, self.restarts, delay
            )
            if self._stop.wait(delay):
                return 0

    def _run_once(self) -> int:
        self._proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            self.command,
            preexec_fn=die_with_parent,
            start_new_session=True,  # our Ctrl-C is ours: we stop the worker, in order
        )
        log.info("worker started (pid %d)", self._proc.pid)
        if self._stop.is_set():  # a signal arrived while it was being spawned
            self._proc.send_signal(signal.SIGTERM)
        try:
            while True:
                try:
                    return self._proc.wait(timeout=0.5)
                except subprocess.TimeoutExpired:
                    if not self.broker_alive() and not self._stop.is_set():
                        log.error("the embedded broker has died; stopping the worker")
                        self._proc.send_signal(signal.SIGTERM)
                    if self._stop.is_set():
                        return self._wait_stopped(self._proc)
        finally:
            self._proc = None

    def _wait_stopped(self, proc: subprocess.Popen[bytes]) -> int:
        limit = self.settings.drain_timeout_s + _STOP_GRACE_S
        try:
            return proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            log.error("worker did not stop within %.0fs of SIGTERM; killing it", limit)
            proc.kill()
            return proc.wait()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if not self._stop.is_set():
            log.info("%s: stopping the worker (it drains first)", signal.Signals(signum).name)
        self._stop.set()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)


_SIGNALS = (signal.SIGTERM, signal.SIGINT)
