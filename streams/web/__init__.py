"""Web views on the worker's HTTP server, one module per area; `register` attaches them all.

An area is a module with a `register(app, …)` that takes the services its pages need; the
district portal's areas are the `portal*.py` modules (templates in `templates/`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import partial

import faust

from abacus.district import DistrictConfig
from abacus.export.request import ExportRequest
from abacus.mail import send_reset_mail
from abacus.privacy.request import DeletionRequest
from abacus.settings import AbacusSettings
from abacus.store.store import Store
from streams.health import Assigned, Readiness
from streams.lag_monitor import LagMonitor
from streams.metrics import Metrics
from streams.portal.accounts import AccountDirectory
from streams.portal.board import ExportBoard
from streams.web import (
    exports,
    ops,
    ops_page,
    portal,
    portal_admin,
    portal_auth,
    portal_exports,
    portal_privacy,
    privacy,
)

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
    monitor: LagMonitor,
    hosted: Sequence[Assigned] = (),
) -> portal.Portal:
    ops.register(app, metrics, readiness, ingest, *hosted)
    exports.register(app, settings, store, accounts)
    privacy.register(app, settings, store)
    core = register_portal(app, settings, store, accounts, board, districts)
    # The read-only operations page, inside the portal (its sign-in, headers, templates).
    ops_page.register(app.web.web_app, core, monitor, metrics)  # type: ignore[attr-defined]
    return core


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

    deletions = app.topic(
        topics.name(topics.privacy_requests), key_serializer="raw", value_serializer="raw"
    )

    async def send_deletion(deletion: DeletionRequest) -> None:
        # The same record as `abacus privacy delete` writes, with the signed-in admin.
        value = json.dumps(deletion.record()).encode()
        await deletions.send(key=deletion.request_id.encode(), value=value)

    web_app = app.web.web_app  # type: ignore[attr-defined]  # the aiohttp driver's app
    core = portal.Portal(settings, store, accounts, board, districts)
    portal.register_core(web_app, core)
    mail = partial(send_reset_mail, settings.smtp) if settings.smtp.host else None
    portal_auth.register(web_app, core, mail)
    portal_exports.register(web_app, core, send)
    portal_admin.register(web_app, core)
    portal_privacy.register(web_app, core, send_deletion)
    return core
