"""`abacus up`: the embedded broker (unless one is configured) plus the worker, stopped together."""

from __future__ import annotations

import logging

from abacus.embedded.broker import EmbeddedBroker
from abacus.security import check_startup
from abacus.settings import AbacusSettings
from streams.run import run_worker

__all__ = ["run_stack"]

log = logging.getLogger(__name__)


def run_stack(settings: AbacusSettings) -> None:
    """Run until SIGINT/SIGTERM, then stop the worker and the broker it started.
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
        run_worker(settings)
    finally:
        if broker is not None:
            broker.stop()
            log.info("embedded broker stopped")
