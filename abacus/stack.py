"""`abacus up`: the embedded broker (unless one is configured) and a supervised worker.

The broker runs in this process's care for as long as `abacus up` runs; the worker is a
child process that is restarted when it dies (`abacus.supervisor`). On SIGTERM/Ctrl-C
the worker drains and exits first, and only then is the broker stopped, so every record
produced before the stop and read by then is stored (docs/architecture.md: the
embedded broker keeps nothing across its own restart; ClickHouse is the durable record).
"""

from __future__ import annotations

import logging

from abacus.embedded.broker import EmbeddedBroker
from abacus.kafka.broker_epoch import ensure_epoch
from abacus.kafka.topics import ensure_topics
from abacus.security import check_startup
from abacus.settings import AbacusSettings
from abacus.supervisor import WorkerSupervisor

__all__ = ["run_stack"]

log = logging.getLogger(__name__)


def run_stack(settings: AbacusSettings) -> int:
    """Run until SIGINT/SIGTERM; returns the exit status for `abacus up`.
    SettingsError, before anything starts, for settings it must not run with."""
    check_startup(settings, embedded_broker=settings.broker.embedded)
    broker = None
    if settings.broker.embedded:
        broker = EmbeddedBroker(
            host=settings.broker.host,
            port=settings.broker.port,
            log_path=settings.log_dir / "broker.log",
        ).start()
        log.info("embedded broker on %s (pid %s)", broker.bootstrap, broker.pid)
    try:
        if broker is not None:
            # A new broker is a new log: its epoch exists before any importer can look,
            # and the importer then waits until the worker has restored the roster topics.
            ensure_topics(settings)
            log.info("broker epoch %s", ensure_epoch(settings)[0])
        supervisor = WorkerSupervisor(
            settings, broker_alive=broker.alive if broker is not None else lambda: True
        )
        return supervisor.run()
    finally:
        if broker is not None:
            broker.stop()
            log.info("embedded broker stopped")
