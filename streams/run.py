"""Run the Faust worker in this process (it owns the embedded ClickHouse engine)."""

from __future__ import annotations

import logging

import faust

from abacus.kafka.broker_epoch import ensure_epoch
from abacus.kafka.topics import ensure_topics
from abacus.security import check_startup
from abacus.settings import AbacusSettings
from abacus.store.store import Store
from streams.app import Worker, create_worker
from streams.health import refresh
from streams.restore import restore_topics

__all__ = ["prepare", "run_worker"]

log = logging.getLogger(__name__)


def prepare(settings: AbacusSettings, store: Store) -> Worker:
    """Create topics and tables (idempotent), restore what a new broker epoch lacks from
    ClickHouse, then build the worker."""
    ensure_topics(settings)
    epoch, meta = ensure_epoch(settings)
    worker = create_worker(settings, store, epoch)
    worker.readiness.topics = True  # ensure_topics raises unless every topic exists
    applied = store.migrate()
    worker.readiness.migrations = True
    log.info("store ready (%d migration(s) applied), broker epoch %s", len(applied), epoch)
    # Before any agent or importer reads the compacted topics (docs/architecture.md).
    if not meta.restored(epoch):
        restore_topics(settings, store, epoch)
    # Late rollup keys keep their order across a restart (streams/rollups.py).
    worker.ingest.rollups.load(store.rollup_marks()[2])
    worker.districts.load()
    worker.deny.update(store.load_deny())
    worker.accounts.load()
    worker.board.load()
    # Ready once topics and tables exist (above) and this worker holds partitions; checked
    # at each scrape of /metrics and /readyz, so neither lags behind a (re)assignment.
    worker.metrics.ready.set_function(
        lambda: float(refresh(worker.app, worker.readiness, worker.ingest, worker.roster))
    )
    return worker


def run_worker(settings: AbacusSettings) -> None:
    """Block until SIGINT/SIGTERM; the worker flushes and commits on the way out. A worker
    that stops for good (`IngestService.exit_code`) exits with that status.
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
            if worker.ingest.exit_code is not None:
                raise SystemExit(worker.ingest.exit_code) from exc
            if exc.code not in (0, None):
                raise
    finally:
        store.close()
