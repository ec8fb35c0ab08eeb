"""`abacus lag --watch` against the real broker: a live table that refreshes, and Ctrl-C
that exits 0."""

from __future__ import annotations

import re
import signal
import subprocess

from abacus.kafka.topics import ensure_topics
from tests.support.events import sample_event
from tests.support.produce import produce_events
from tests.support.stack import ABACUS, Stack, wait_until

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# Make rich treat the pipe as an interactive terminal, so every refresh is written.
TERMINAL = {"TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1", "TERM": "xterm", "COLUMNS": "140"}


def test_watch_refreshes_a_live_table_and_ctrl_c_exits_0(stack: Stack) -> None:
    ensure_topics(stack.settings)
    events = [sample_event("points_earned", student_id=f"S{i % 9:03d}") for i in range(60)]
    ends = produce_events(stack, events)
    group = stack.settings.ingest_group
    env = {**stack.env, **TERMINAL}

    done = subprocess.run(
        [*ABACUS, "lag", "--watch", "--interval", "0.3", "--count", "3", "--window", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    frames = ANSI.sub("", done.stdout)
    for n in (1, 2, 3):
        assert f"refresh {n} at" in frames
    # Never committed and nobody consuming, with records waiting: stopped.
    assert f"{group}: STOPPED (0 member(s))" in frames
    topic = stack.topic("events")
    for partition, end in ends.items():
        # topic │ partition │ committed │ log end │ lag (no commit: lag = the whole log)
        row = rf"{re.escape(topic)}\s*│\s*{partition}\s*│\s*-\s*│\s*{end}\s*│\s*{end}\s*│"
        assert re.search(row, frames), (partition, end, frames[-3000:])

    log = stack.home / "watch.out"
    stack.home.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        watching = subprocess.Popen(
            [*ABACUS, "lag", "--watch", "--interval", "0.3"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until(lambda: "refresh 2 at" in log.read_text(), 60, "two refreshes")
            watching.send_signal(signal.SIGINT)
            code = watching.wait(timeout=30)
        finally:
            if watching.poll() is None:
                watching.kill()
                watching.wait()
    assert code == 0, log.read_text()[-2000:]
