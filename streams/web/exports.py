"""Downloads of finished exports, for the holder of a valid signed link; every try is in the
audit trail (`audit_log`: `download`, `download.denied`). People download in the portal.

This is the machine interface (links in status records and mails). The order of checks:
the URL must name a file the export writer could have written, inside the export directory
(`abacus/export/files.py`); the link must be well-formed, correctly signed and unexpired;
the export must belong to the requester the link was issued to (`export_requests`), who
must still be an active user of the district: a user deactivated by a roster import loses
their links at once, as they lose their portal sessions.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import faust
from aiohttp import web
from faust.web import Request, View

from abacus.audit import AuditEntry
from abacus.export.files import ExportPathError, export_file
from abacus.export.links import LinkError, verify_link
from abacus.settings import AbacusSettings
from abacus.store.store import Store
from streams.portal.accounts import AccountDirectory

__all__ = ["register"]

_AUDIT_TEXT = 200  # audited values come from the URL: keep them short


def register(
    app: faust.App, settings: AbacusSettings, store: Store, accounts: AccountDirectory
) -> None:
    key = settings.web.signing_key.get_secret_value().encode()

    async def audit(
        district: str, request_id: str, requester: str, action: str, detail: str, req: Request
    ) -> None:
        d, r, who, act, why = (
            v[:_AUDIT_TEXT] for v in (district, request_id, requester, action, detail)
        )
        await store.aaudit(AuditEntry(datetime.now(UTC), d, who, act, r, why, req.remote or ""))

    @app.page("/exports/{district}/{name}")
    class Download(View):
        async def get(self, request: Request, district: str, name: str) -> Any:
            query = dict(request.query)
            by = query.get("by", "")
            try:
                # aiohttp has decoded the parts (`%2F` included): check what they name.
                file = export_file(settings.export_dir, district, name)
            except ExportPathError as exc:
                await audit("", "", by, "download.denied", str(exc), request)
                return self.json({"error": "no such export"}, status=404)
            request_id = name.removesuffix(".csv")
            try:
                requester = verify_link(
                    f"/exports/{district}/{name}", query, key=key, now=int(time.time())
                )
            except LinkError as exc:
                await audit(district, request_id, by, "download.denied", str(exc), request)
                return self.json({"error": str(exc)}, status=403)
            claim = await store.aexport_claim(district, request_id)
            if claim is None or claim.requester != requester or not file.is_file():
                # Not this requester's export (or gone): nothing to say about whose it is.
                await audit(
                    district, request_id, requester, "download.denied", "no such export", request
                )
                return self.json({"error": "no such export"}, status=404)
            if accounts.active(district, requester) is None:
                await audit(
                    district, request_id, requester, "download.denied",
                    "requester no longer active", request,
                )  # fmt: skip
                return self.json({"error": "the link's requester is no longer active"}, status=403)
            await audit(district, request_id, requester, "download", "", request)
            return web.FileResponse(
                file,
                headers={
                    "Content-Disposition": f'attachment; filename="{name}"',
                    "Content-Type": "text/csv; charset=utf-8",
                },
            )
