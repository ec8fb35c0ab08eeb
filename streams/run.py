"""Run the Faust worker in this process (it owns the embedded ClickHouse engine)."""

from __future__ import annotations

import logging

import faust

from abacus.kafka.topics import ensure_topics
from abacus.security import check_startup
from abacus.settings import AbacusSettings
from abacus.store.store import Store
from streams.app import Worker, create_worker
from streams.health import refresh

__all__ = ["prepare", "run_worker"]

log = logging.getLogger(__name__)


def prepare(settings: AbacusSettings, store: Store) -> Worker:
    """Create topics and tables (idempotent), then build the worker."""
    ensure_topics(settings)
    worker = create_worker(settings, store)
    worker.readiness.topics = True  # ensure_topics raises unless every topic exists
    applied = store.migrate()
    worker.readiness.migrations = True
    log.info("store ready (%d migration(s) applied)", len(applied))
    worker.districts.load()
    worker.deny.update(store.load_deny())
    # Ready once topics and tables exist (above) and this worker holds partitions; checked
    # at each scrape of /metrics and /readyz, so neither lags behind a (re)assignment.
    worker.metrics.ready.set_function(
        lambda: float(refresh(worker.app, worker.readiness, worker.ingest))
    )
    return worker


def run_worker(settings: AbacusSettings) -> None:
    """Block until SIGINT/SIGTERM; the worker flushes and commits on the way out.
    SettingsError, before anything starts, for settings it must not run with."""
    check_startup(settings)
    store = Store.open(settings)
    try:
        worker = prepare(settings, store)
        faust_worker = faust.Worker(
            worker.app,
            loglevel=settings.log_level,
            quiet=True,
            redirect_stdouts=False,
            logging_config=None,
        )
        try:
            faust_worker.execute_from_commandline()
        except SystemExit as exc:
            if exc.code not in (0, None):
                raise
    finally:
        store.close()
