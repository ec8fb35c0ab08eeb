"""`abacus up` and `abacus init`: start, readiness, clean stop, no orphaned children."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from abacus.embedded.broker import free_port, port_is_open
from abacus.kafka.topics import topic_specs
from abacus.store.migrations import migration_files
from tests.support.stack import ABACUS, Stack, child_processes, http_get, wait_until


def _broker_pids(port: int) -> list[int]:
    """PIDs of Tansu processes listening on ``port`` (read from /proc)."""
    needle = f"tcp://127.0.0.1:{port}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"tansu" in cmdline and needle in cmdline:
                pids.append(int(entry.name))
    return pids


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (children of each of its threads, recursively)."""
    found: set[int] = set()
    for child, _ in child_processes(pid):
        found |= {child} | _descendants(child)
    return found


def _alive(pids: set[int]) -> set[int]:
    """Those of ``pids`` still running (zombies count as gone)."""
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.add(pid)
    return alive


def _start_up(tmp_path: Path) -> tuple[subprocess.Popen[bytes], int, int]:
    broker_port, web_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ABACUS_")}
    env |= {
        "ABACUS_HOME": str(tmp_path / "home"),
        "ABACUS_BROKER__PORT": str(broker_port),
        "ABACUS_WEB__PORT": str(web_port),
    }
    log = (tmp_path / "up.log").open("wb")
    proc = subprocess.Popen([*ABACUS, "up"], env=env, stdout=log, stderr=subprocess.STDOUT)
    wait_until(
        lambda: http_get(f"http://127.0.0.1:{web_port}/readyz")[0] == 200,
        90,
        "abacus up to be ready",
    )
    assert port_is_open("127.0.0.1", broker_port)
    assert len(_broker_pids(broker_port)) == 1
    return proc, broker_port, web_port


def test_up_starts_ready_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    proc, broker_port, web_port = _start_up(tmp_path)
    assert http_get(f"http://127.0.0.1:{web_port}/healthz") == (200, b'{"status":"ok"}')
    children = _descendants(proc.pid)
    assert len(children) >= 2  # the broker and at least one ingest process
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    wait_until(lambda: not _alive(children), 15, "every child to exit with the stack")
    assert not port_is_open("127.0.0.1", broker_port)
    assert _broker_pids(broker_port) == []
    assert (tmp_path / "home" / "logs" / "broker.log").exists()


def test_a_killed_stack_leaves_no_orphans(tmp_path: Path) -> None:
    proc, broker_port, _ = _start_up(tmp_path)
    children = _descendants(proc.pid)
    assert len(children) >= 2  # the broker and at least one ingest process
    proc.kill()
    proc.wait(timeout=30)
    wait_until(lambda: _broker_pids(broker_port) == [], 15, "the broker to exit with its parent")
    wait_until(lambda: not _alive(children), 15, "the ingest processes to exit with it")
    assert not port_is_open("127.0.0.1", broker_port)


def test_init_creates_topics_and_tables_idempotently(stack: Stack) -> None:
    first = stack.run("init").stdout
    second = stack.run("init").stdout
    assert f"topics created: {len(topic_specs(stack.settings))} " in first
    names = [name for _, name, _ in migration_files()]
    assert f"migrations applied: {len(names)} {' '.join(names)}" in first
    assert second.splitlines() == ["topics created: 0", "migrations applied: 0"]
    tables = {
        row[0] for row in stack.query("SELECT name FROM system.tables WHERE database = 'abacus'")
    }
    assert {"events", "schema_migrations"} <= tables
    versions = stack.query("SELECT version FROM abacus.schema_migrations")
    assert sorted(v[0] for v in versions) == [v for v, _, _ in migration_files()]
