"""Web views on the worker's HTTP server, one module per area; `register` attaches them all.

An area is a module with a `register(app, …)` that takes the services its pages need.
"""

from __future__ import annotations

import faust

from abacus.settings import AbacusSettings
from abacus.store.store import Store
from streams.health import Assigned, Readiness
from streams.metrics import Metrics
from streams.web import exports, ops, privacy

__all__ = ["register"]


def register(
    app: faust.App,
    settings: AbacusSettings,
    store: Store,
    metrics: Metrics,
    readiness: Readiness,
    ingest: Assigned,
) -> None:
    ops.register(app, metrics, readiness, ingest)
    exports.register(app, settings, store)
    privacy.register(app, settings, store)
