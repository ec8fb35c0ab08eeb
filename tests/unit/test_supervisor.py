"""`abacus up`'s supervisor: restarts with a doubling backoff, never after a final exit."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

from abacus.settings import AbacusSettings, SupervisorSettings
from abacus.supervisor import EXIT_FINAL, WorkerSupervisor, backoff_delays
from streams.ingest_stop import EXIT_UNREADABLE, codec_error_message

FAST = AbacusSettings(supervisor=SupervisorSettings(backoff_initial_s=0.05, backoff_max_s=0.2))


def test_backoff_doubles_up_to_the_cap() -> None:
    delays = backoff_delays(1.0, 30.0)
    assert [next(delays) for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]


def test_a_worker_that_stops_for_good_is_not_restarted() -> None:
    assert EXIT_UNREADABLE == EXIT_FINAL
    command = [sys.executable, "-c", f"raise SystemExit({EXIT_FINAL})"]
    supervisor = WorkerSupervisor(FAST, command=command)
    assert supervisor.run() == EXIT_FINAL
    assert supervisor.restarts == 0


def test_a_crashing_worker_is_restarted_until_it_stays_up_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    runs = tmp_path / "runs"
    script = (
        "import pathlib, signal, sys, time\n"
        f"runs = pathlib.Path({str(runs)!r})\n"
        "n = len(runs.read_text()) if runs.exists() else 0\n"
        "runs.write_text('x' * (n + 1))\n"
        "if n < 2:\n"
        "    sys.exit(1)\n"
        "signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))\n"
        "time.sleep(60)\n"
    )
    supervisor = WorkerSupervisor(FAST, command=[sys.executable, "-c", script])

    def stop_when_up() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (runs.exists() and runs.read_text() == "xxx"):
            time.sleep(0.05)
        time.sleep(0.3)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=stop_when_up, daemon=True).start()
    assert supervisor.run() == 0  # the worker's own status after SIGTERM
    assert supervisor.restarts == 2
    assert runs.read_text() == "xxx"


def test_an_unreadable_codec_stops_with_one_line_naming_the_codec_and_the_fix() -> None:
    from aiokafka.errors import UnsupportedCodecError

    message = codec_error_message(
        UnsupportedCodecError("Libraries for snappy compression codec not found")
    )
    assert "\n" not in message
    assert "snappy" in message
    assert "cramjam" in message
