"""Operations pages: /healthz, /readyz and Prometheus /metrics."""

from __future__ import annotations

from typing import Any

import faust
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams.health import Assigned, Readiness, refresh
from streams.metrics import Metrics

__all__ = ["register"]


def register(
    app: faust.App, metrics: Metrics, readiness: Readiness, ingest: Assigned, *hosted: Assigned
) -> None:
    """The pages; ``hosted``: the other consumers the worker hosts (the roster consumer),
    whose assignment /readyz checks too, as the ``abacus_ready`` metric does."""

    @app.page("/healthz")
    class Health(View):
        async def get(self, request: Request) -> Response:
            return self.json({"status": "ok"})

    @app.page("/readyz")
    class Ready(View):
        async def get(self, request: Request) -> Response:
            ready = refresh(app, readiness, ingest, *hosted)  # checked now, not at a timer tick
            body: dict[str, Any] = {"ready": ready, "checks": readiness.as_dict()}
            return self.json(body, status=200 if ready else 503)

    @app.page("/metrics")
    class PrometheusMetrics(View):
        async def get(self, request: Request) -> Response:
            body = generate_latest(metrics.registry)
            return self.bytes(body, content_type=CONTENT_TYPE_LATEST.split(";")[0])
