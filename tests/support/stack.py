"""Test harness: a real worker process against the real broker, with its own home and topics."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from abacus.embedded.broker import free_port
from abacus.settings import AbacusSettings

ABACUS = [sys.executable, "-m", "abacus"]


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.2) -> Any:
    """Poll until ``predicate()`` is truthy; fail the test with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def child_processes(pid: int) -> list[tuple[int, bytes]]:
    """(pid, command line) of each child of ``pid`` (of every one of its threads); processes
    that exit while we look are left out."""
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return []
    out = []
    for task in tasks:
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            try:
                out.append((child, Path(f"/proc/{child}/cmdline").read_bytes()))
            except OSError:
                continue
    return out


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


@dataclass
class Stack:
    """One isolated Abacus deployment on the shared test broker: unique topics, group, home."""

    bootstrap: str
    home: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    web_port: int = field(default_factory=free_port)
    # True: `abacus up` starts its own embedded broker on ``bootstrap``'s port.
    embedded: bool = False
    worker: subprocess.Popen[bytes] | None = None  # `abacus worker`, or `abacus up`

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ABACUS_")}
        env.update(
            ABACUS_HOME=str(self.home),
            ABACUS_APP_ID=f"abacus-{self.tag}",
            ABACUS_TOPICS__PREFIX=f"t{self.tag}.",
            ABACUS_WEB__PORT=str(self.web_port),
            ABACUS_BATCH_WITHIN_S="0.2",
            # The rollup service's pass: often, so tests wait for it briefly.
            ABACUS_EXPORTS__ROLLUP_INTERVAL_S="0.3",
            # Tansu completes a group join after about half the session timeout (3 s of
            # the 6 s default, 2 s of 3 s; docs/architecture.md). A worker joins two groups
            # in turn, so this starts every worker ~2 s sooner; heartbeats keep their margin.
            ABACUS_BROKER__SESSION_TIMEOUT_S="3",
            ABACUS_BROKER__HEARTBEAT_INTERVAL_S="0.5",
        )
        if self.embedded:
            env["ABACUS_BROKER__PORT"] = self.bootstrap.rsplit(":", 1)[1]
        else:
            env["ABACUS_BROKER__BOOTSTRAP"] = self.bootstrap
        env.update(self.extra_env)
        return env

    @property
    def settings(self) -> AbacusSettings:
        saved = dict(os.environ)
        try:
            os.environ.clear()
            os.environ.update(self.env)
            return AbacusSettings()
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def topic(self, name: str) -> str:
        return f"t{self.tag}.{name}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def run(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [*ABACUS, *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"abacus {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def start_worker(
        self, ready_timeout: float = 120, command: str = "worker", *, path: str = "/readyz"
    ) -> None:
        """Start the worker and wait until ``path`` answers 200 (``/healthz`` for a worker
        that may hold no partition of the agents' group: a second worker in one group)."""
        assert self.worker is None or self.worker.poll() is not None, "worker already running"
        self.home.mkdir(parents=True, exist_ok=True)
        log = (self.home / "worker.log").open("ab")
        self.worker = subprocess.Popen(
            [*ABACUS, command], env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        wait_until(lambda: self._ready(path), ready_timeout, f"abacus {command} {path}")

    def start_up(self, ready_timeout: float = 150) -> None:
        """`abacus up`: a supervised worker (and, when ``embedded``, its own broker)."""
        self.start_worker(ready_timeout, command="up")

    def supervised_worker_pid(self) -> int | None:
        """The pid of the worker `abacus up` runs now (its child running `abacus worker`)."""
        assert self.worker is not None
        for child, cmdline in child_processes(self.worker.pid):
            if b"worker" in cmdline.split(b"\0"):
                return child
        return None

    def _ready(self, path: str = "/readyz") -> bool:
        if self.worker is not None and self.worker.poll() is not None:
            raise AssertionError(f"worker exited with {self.worker.returncode}:\n{self.log_tail()}")
        return http_get(f"{self.url}{path}")[0] == 200

    def log_tail(self, n: int = 60) -> str:
        path = self.home / "worker.log"
        return (
            "\n".join(path.read_text(errors="replace").splitlines()[-n:]) if path.exists() else ""
        )

    def stop_worker(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        assert self.worker is not None
        if self.worker.poll() is None:
            self.worker.send_signal(sig)
        code = self.worker.wait(timeout=timeout)
        self.worker = None
        return code

    def kill_worker(self) -> int:
        return self.stop_worker(signal.SIGKILL)

    def metrics(self) -> dict[str, float]:
        """Current worker metrics as {'name{labels}': value} (samples only)."""
        from prometheus_client.parser import text_string_to_metric_families

        status, body = http_get(f"{self.url}/metrics")
        assert status == 200, f"/metrics returned {status}"
        out: dict[str, float] = {}
        for family in text_string_to_metric_families(body.decode()):
            for sample in family.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                out[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
        return out

    def metric_sum(self, prefix: str) -> float:
        return sum(v for k, v in self.metrics().items() if k.split("{")[0] == prefix)

    def wait_rollups(self, timeout: float = 60) -> None:
        """Until the running worker's rollups have caught up: every late key rebuilt and
        every closed day built (`abacus_rollups_behind` 0)."""
        wait_until(
            lambda: self.metrics().get("abacus_rollups_behind") == 0,
            timeout,
            "rollups caught up",
        )

    def query(self, sql: str, **params: object) -> list[list[Any]]:
        """Rows of a read query; in embedded mode the worker must be stopped (chDB is
        one process per data path), so this asserts that."""
        if "ABACUS_CLICKHOUSE__URL" not in self.extra_env:
            assert self.worker is None, "stop the worker before querying embedded ClickHouse"
        args = [arg for name, value in params.items() for arg in ("-p", f"{name}={value}")]
        out = self.run("sql", sql, *args).stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def close(self) -> None:
        if self.worker is not None and self.worker.poll() is None:
            self.worker.kill()
            self.worker.wait(timeout=30)
        self.worker = None
