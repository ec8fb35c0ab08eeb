"""The read-only operations page, `/portal/ops` (and `/ops`, which leads there): consumer
lag per partition, each group's status, an hour of lag as an inline SVG chart, dead
letters by reason and ingest freshness. Server-rendered; htmx refreshes its panel.

Who may see it: a caller with the operator token (``ABACUS_WEB__OPS_TOKEN``, sent as
``Authorization: Bearer <token>``: scripts, a reverse proxy in front of the ops team) or
a signed-in district administrator. It shows no student or district data, only the
worker's own figures; a wrong token is refused (401) before any session is looked at.
"""

from __future__ import annotations

import hmac
import logging
import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from consumers.lag_chart import COLOURS, lag_series, render_lag_chart
from consumers.ops_view import group_views, quantile
from streams.lag_monitor import HISTORY_S, LagMonitor
from streams.metrics import Metrics
from streams.web.portal import PREFIX, Portal, User

__all__ = ["FRESHNESS_WINDOW_S", "OPS_PATH", "register", "token_matches"]

log = logging.getLogger(__name__)

OPS_PATH = f"{PREFIX}/ops"
FRESHNESS_WINDOW_S = 300.0


def token_matches(expected: str | None, header: str) -> bool:
    """Whether an ``Authorization`` header carries the operator token (constant time); an
    unset or empty token lets nobody in."""
    scheme, _, given = header.partition(" ")
    if not expected or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), expected.encode())


def register(
    web_app: web.Application, portal: Portal, monitor: LagMonitor, metrics: Metrics
) -> None:
    settings = portal.settings
    secret = settings.web.ops_token
    expected = secret.get_secret_value() if secret is not None else None

    async def viewer(request: web.Request) -> User | None:
        """The signed-in admin, or None for the operator token; anyone else is refused."""
        header = request.headers.get("Authorization")
        if header is not None:
            if token_matches(expected, header):
                return None
            # Never logged or echoed: only that a token was refused, and from where.
            log.warning("operator token refused on %s from %s", request.path, request.remote)
            error = portal.page_error(request, 401, "The operator token is not valid.")
            error.headers["WWW-Authenticate"] = 'Bearer realm="abacus-ops"'
            raise error
        return await portal.require_user(request, admin=True)

    cache: dict[str, Any] = {}

    def measured() -> dict[str, Any]:
        """What only changes when the monitor measures: built once per tick, however
        often the page is polled (`abacus bench ops`)."""
        if cache.get("tick") != monitor.measured:
            now = time.time()
            groups = group_views(monitor.history, monitor.window_s)
            series = {
                g.group: lag_series(monitor.history.samples(g.group, since=now - HISTORY_S))
                for g in groups
            }
            recent = monitor.freshness.recent(FRESHNESS_WINDOW_S)
            cache.clear()
            cache.update(
                tick=monitor.measured,
                now=now,
                groups=groups,
                chart=render_lag_chart(series, now=now, span_s=HISTORY_S),
                legend=[(g.group, COLOURS[i % len(COLOURS)]) for i, g in enumerate(groups)],
                freshness={
                    "p50": quantile(recent, 0.5),
                    "p99": quantile(recent, 0.99),
                    "count": int(recent[-1][1]) if recent else 0,
                },
            )
        return cache

    def context() -> dict[str, Any]:
        reasons = metrics.dead_letters_by_reason()  # counters: read live, cheaply
        return {
            **measured(),
            "reasons": sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])),
            "dead_letters": metrics.dead_letter_count(),
            "freshness_window_min": round(FRESHNESS_WINDOW_S / 60),
            "window_s": monitor.window_s,
            "interval_s": settings.lag_interval_s,
            "utc": _utc,
            "seconds": _seconds,
            "refresh_s": settings.web.ops_refresh_s,
            "panel_url": f"{OPS_PATH}/panel",
        }

    async def page(request: web.Request) -> web.StreamResponse:
        user = await viewer(request)
        return portal.render(request, "ops.html", context(), user=user)

    async def panel(request: web.Request) -> web.StreamResponse:
        user = await viewer(request)
        return portal.render(request, "_ops_panel.html", context(), user=user)

    async def short(request: web.Request) -> web.StreamResponse:
        raise web.HTTPSeeOther(OPS_PATH)

    r = web_app.router
    r.add_get("/ops", short)
    r.add_get(OPS_PATH, page)
    r.add_get(f"{OPS_PATH}/panel", panel)


def _utc(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%H:%M:%S UTC")


def _seconds(value: float | None) -> str:
    return "no events stored" if value is None else f"{value:.2f} s"
