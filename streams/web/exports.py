"""Web views on the worker's HTTP server: health, readiness and Prometheus metrics."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import faust
from aiohttp import web
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from abacus.export.links import LinkError, verify_link
from streams.health import refresh

if TYPE_CHECKING:
    from streams.app import Runtime

__all__ = ["register"]

AUDIT_COLUMNS = ("at", "district_id", "request_id", "requester", "action", "detail", "remote")


async def _audit(
    runtime: Runtime,
    district: str,
    request_id: str,
    requester: str,
    action: str,
    detail: str,
    request: Request,
) -> None:
    row = [datetime.now(UTC), district, request_id, requester, action, detail, request.remote or ""]
    await runtime.writer.insert_async("export_audit", [row], AUDIT_COLUMNS)


def register(app: faust.App, runtime: Runtime) -> None:
    """Attach /healthz, /readyz and /metrics to the app's web server."""

    @app.page("/healthz")
    class Health(View):
        async def get(self, request: Request) -> Response:
            return self.json({"status": "ok"})

    @app.page("/readyz")
    class Ready(View):
        async def get(self, request: Request) -> Response:
            ready = refresh(app, runtime.readiness)  # checked now, not at a timer tick
            body: dict[str, Any] = {"ready": ready, "checks": runtime.readiness.as_dict()}
            return self.json(body, status=200 if ready else 503)

    @app.page("/exports/{district}/{name}")
    class Download(View):
        """A finished export, for the holder of a valid signed link; every try is audited."""

        async def get(self, request: Request, district: str, name: str) -> Any:
            path = f"/exports/{district}/{name}"
            query = dict(request.query)
            key = runtime.settings.web.signing_key.get_secret_value().encode()
            request_id = name.removesuffix(".csv")
            try:
                requester = verify_link(path, query, key=key, now=int(time.time()))
            except LinkError as exc:
                await _audit(
                    runtime, district, request_id, query.get("by", ""), "denied", str(exc), request
                )
                return self.json({"error": str(exc)}, status=403)
            file = runtime.settings.export_dir / district / name
            if not name.endswith(".csv") or "/" in name or not file.is_file():
                return self.json({"error": "no such export"}, status=404)
            await _audit(runtime, district, request_id, requester, "download", "", request)
            return web.FileResponse(
                file,
                headers={
                    "Content-Disposition": f'attachment; filename="{name}"',
                    "Content-Type": "text/csv; charset=utf-8",
                },
            )

    @app.page("/metrics")
    class PrometheusMetrics(View):
        async def get(self, request: Request) -> Response:
            body = generate_latest(runtime.metrics.registry)
            return self.bytes(body, content_type=CONTENT_TYPE_LATEST.split(";")[0])
