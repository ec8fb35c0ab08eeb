"""Run the Faust worker in this process (it owns the embedded ClickHouse engine)."""

from __future__ import annotations

import logging

import faust

from abacus.settings import AbacusSettings
from abacus.store.migrations import apply_migrations
from abacus.topics import ensure_topics
from streams.app import create_app

__all__ = ["prepare", "run_worker"]

log = logging.getLogger(__name__)


def prepare(settings: AbacusSettings) -> faust.App:
    """Create topics and tables (idempotent), then build the app."""
    ensure_topics(settings)
    app = create_app(settings)
    runtime = app.abacus_runtime  # type: ignore[attr-defined]
    applied = apply_migrations(runtime.writer.client, settings.clickhouse.database)
    log.info("store ready (%d migration(s) applied)", len(applied))

    @app.timer(1.0)
    async def mark_ready() -> None:
        # Ready once topics and tables exist (above) and this worker holds partitions.
        assigned = app.consumer.assignment() if app.consumer else set()
        runtime.metrics.ready.set(1 if assigned else 0)

    return app


def run_worker(settings: AbacusSettings) -> None:
    """Block until SIGINT/SIGTERM; the worker flushes and commits on the way out."""
    app = prepare(settings)
    worker = faust.Worker(
        app,
        loglevel=settings.log_level,
        quiet=True,
        redirect_stdouts=False,
        logging_config=None,
    )
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise
    finally:
        app.abacus_runtime.writer.close()  # type: ignore[attr-defined]
