"""A worker timer that deletes export files whose download links have expired."""

from __future__ import annotations

import asyncio
import logging
import time
from functools import partial

import faust

from abacus.settings import AbacusSettings
from consumers.retention import sweep_exports

__all__ = ["register"]

log = logging.getLogger(__name__)


def register(app: faust.App, settings: AbacusSettings) -> None:
    """Every ``settings.exports.sweep_interval_s``: delete expired exports (CSV + manifest)."""
    exports = settings.exports
    sweep = partial(sweep_exports, settings.export_dir, retention_s=exports.retention_s)

    @app.timer(exports.sweep_interval_s)
    async def sweep_expired_exports() -> None:
        try:
            await asyncio.to_thread(lambda: sweep(now=time.time()))
        except OSError as exc:  # a failed sweep is tried again at the next tick
            log.warning("expired exports not deleted: %s", exc)
