"""Web views on the worker's HTTP server, one module per area; `register` attaches them all.

An area is a module with a `register(app, …)` that takes the services its pages need; the
district portal's areas are the `portal*.py` modules (templates in `templates/`).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

import faust

from abacus.district import DistrictConfig
from abacus.export.request import ExportRequest
from abacus.mail import send_reset_mail
from abacus.settings import AbacusSettings
from abacus.store.store import Store
from streams.health import Assigned, Readiness
from streams.metrics import Metrics
from streams.portal.accounts import AccountDirectory
from streams.portal.board import ExportBoard
from streams.web import exports, ops, portal, portal_admin, portal_auth, portal_exports

__all__ = ["register"]


def register(
    app: faust.App,
    settings: AbacusSettings,
    store: Store,
    metrics: Metrics,
    readiness: Readiness,
    ingest: Assigned,
    accounts: AccountDirectory,
    board: ExportBoard,
    districts: Mapping[str, DistrictConfig],
) -> portal.Portal:
    ops.register(app, metrics, readiness, ingest)
    exports.register(app, settings, store)
    return register_portal(app, settings, store, accounts, board, districts)


def register_portal(
    app: faust.App,
    settings: AbacusSettings,
    store: Store,
    accounts: AccountDirectory,
    board: ExportBoard,
    districts: Mapping[str, DistrictConfig],
) -> portal.Portal:
    """The district portal on the same web server (`/portal/…`)."""
    topics = settings.topics
    requests = app.topic(
        topics.name(topics.export_requests), key_serializer="raw", value_serializer="raw"
    )

    async def send(request: ExportRequest) -> None:
        # The same record as `abacus export request` writes, with the signed-in requester.
        value = request.model_dump_json().encode()
        await requests.send(key=request.request_id.encode(), value=value)

    web_app = app.web.web_app  # type: ignore[attr-defined]  # the aiohttp driver's app
    core = portal.Portal(settings, store, accounts, board, districts)
    portal.register_core(web_app, core)
    mail = partial(send_reset_mail, settings.smtp) if settings.smtp.host else None
    portal_auth.register(web_app, core, mail)
    portal_exports.register(web_app, core, send)
    portal_admin.register(web_app, core)
    return core
