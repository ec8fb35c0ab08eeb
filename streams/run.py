"""Run the Faust worker in this process (it owns the embedded ClickHouse engine)."""

from __future__ import annotations

import logging

import faust

from abacus.aggregation.pending import resolve_pending
from abacus.broker_epoch import ensure_epoch
from abacus.settings import AbacusSettings
from abacus.store.migrations import apply_migrations
from abacus.topics import ensure_topics
from streams.agents.ingest import timezone_resolver
from streams.agents.roster import load_districts
from streams.app import create_app
from streams.health import refresh
from streams.restore import restore_topics

__all__ = ["prepare", "run_worker"]

log = logging.getLogger(__name__)


def prepare(settings: AbacusSettings) -> faust.App:
    """Create topics and tables (idempotent), restore what a new broker epoch lacks from
    ClickHouse, then build the app."""
    ensure_topics(settings)
    epoch, meta = ensure_epoch(settings)
    app = create_app(settings, broker_epoch=epoch)
    runtime = app.abacus_runtime  # type: ignore[attr-defined]
    runtime.readiness.topics = True  # ensure_topics raises unless every topic exists
    applied = apply_migrations(runtime.writer.client, settings.clickhouse.database)
    runtime.readiness.migrations = True
    log.info("store ready (%d migration(s) applied), broker epoch %s", len(applied), epoch)
    # Before any agent or importer reads the compacted topics (DESIGN.md §2).
    if not meta.restored(epoch):
        restore_topics(settings, runtime.writer.client, epoch)
    runtime.districts.update(load_districts(runtime.writer.client, settings.clickhouse.database))
    log.info("%d district config(s) loaded", len(runtime.districts))
    # A crash during a pending-facts resolution leaves marks behind: finish them now.
    timezone_of = timezone_resolver(runtime)
    for district_id in runtime.districts:
        resolved = resolve_pending(runtime.writer, district_id, timezone_of)
        runtime.metrics.pending_resolved.inc(resolved)

    # Ready once topics and tables exist (above) and this worker holds partitions; checked
    # at each scrape of /metrics and /readyz, so neither lags behind a (re)assignment.
    runtime.metrics.ready.set_function(lambda: float(refresh(app, runtime.readiness)))

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
    runtime = app.abacus_runtime  # type: ignore[attr-defined]
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        if runtime.exit_code is not None:
            raise SystemExit(runtime.exit_code) from exc
        if exc.code not in (0, None):
            raise
    finally:
        runtime.writer.close()
