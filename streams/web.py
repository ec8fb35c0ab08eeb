"""Web views on the worker's HTTP server: health, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import faust
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

if TYPE_CHECKING:
    from streams.app import Runtime

__all__ = ["register"]


def register(app: faust.App, runtime: Runtime) -> None:
    """Attach /healthz, /readyz and /metrics to the app's web server."""

    @app.page("/healthz")
    class Health(View):
        async def get(self, request: Request) -> Response:
            return self.json({"status": "ok"})

    @app.page("/readyz")
    class Ready(View):
        async def get(self, request: Request) -> Response:
            ready = bool(runtime.metrics.ready._value.get())
            body: dict[str, Any] = {"ready": ready}
            return self.json(body, status=200 if ready else 503)

    @app.page("/metrics")
    class PrometheusMetrics(View):
        async def get(self, request: Request) -> Response:
            body = generate_latest(runtime.metrics.registry)
            return self.bytes(body, content_type=CONTENT_TYPE_LATEST.split(";")[0])
