"""Downloads of finished exports, for the holder of a valid signed link (the machine
interface; people download in the portal); every try is in the audit trail."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import faust
from aiohttp import web
from faust.web import Request, View

from abacus.audit import AuditEntry
from abacus.export.links import LinkError, verify_link
from abacus.settings import AbacusSettings
from abacus.store.store import Store

__all__ = ["register"]


def register(app: faust.App, settings: AbacusSettings, store: Store) -> None:
    key = settings.web.signing_key.get_secret_value().encode()

    async def audit(
        district: str, request_id: str, requester: str, action: str, detail: str, req: Request
    ) -> None:
        entry = AuditEntry(
            datetime.now(UTC), district, requester, action, request_id, detail, req.remote or ""
        )
        await store.aaudit(entry)

    @app.page("/exports/{district}/{name}")
    class Download(View):
        async def get(self, request: Request, district: str, name: str) -> Any:
            path = f"/exports/{district}/{name}"
            query = dict(request.query)
            request_id = name.removesuffix(".csv")
            try:
                requester = verify_link(path, query, key=key, now=int(time.time()))
            except LinkError as exc:
                await audit(
                    district, request_id, query.get("by", ""), "download.denied", str(exc), request
                )
                return self.json({"error": str(exc)}, status=403)
            file = settings.export_dir / district / name
            if not name.endswith(".csv") or "/" in name or not file.is_file():
                return self.json({"error": "no such export"}, status=404)
            await audit(district, request_id, requester, "download", "", request)
            return web.FileResponse(
                file,
                headers={
                    "Content-Disposition": f'attachment; filename="{name}"',
                    "Content-Type": "text/csv; charset=utf-8",
                },
            )
