"""Calls for the command line (signed, `abacus.worker_api`): receipts, their verification and
the audit trail, answered from the store the worker owns."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from typing import Any

import faust
from faust.web import Request, Response, View

from abacus.privacy.receipt import ReceiptError
from abacus.settings import AbacusSettings
from abacus.store.store import Store
from abacus.worker_api import HEADER, CallError, verify_call
from consumers.privacy_verify import verification_report

__all__ = ["register"]


def register(app: faust.App, settings: AbacusSettings, store: Store) -> None:
    key = settings.web.signing_key.get_secret_value().encode()

    async def signed(view: View, request: Request) -> bytes | Response:
        body = await request.read()
        try:
            verify_call(key, request.method, request.path_qs, body, request.headers.get(HEADER),
                        time.time())  # fmt: skip
        except CallError as exc:
            return view.json({"error": str(exc)}, status=403)
        return body

    @app.page("/privacy/verify")
    class Verify(View):
        async def post(self, request: Request) -> Response:
            body = await signed(self, request)
            if isinstance(body, Response):
                return body
            try:
                doc = json.loads(body)
                report = await asyncio.to_thread(verification_report, doc, key, store.check_count)
            except (ValueError, ReceiptError) as exc:
                return self.json({"error": str(exc)}, status=422)
            return self.json(report)

    @app.page("/privacy/receipts/{request_id}")
    class Receipt(View):
        async def get(self, request: Request, request_id: str) -> Response:
            body = await signed(self, request)
            if isinstance(body, Response):
                return body
            text = await store.aprivacy_receipt(request_id)
            if text is None:
                return self.json({"error": f"no receipt for {request_id}"}, status=404)
            return self.json(json.loads(text))

    @app.page("/audit")
    class Audit(View):
        async def get(self, request: Request) -> Response:
            body = await signed(self, request)
            if isinstance(body, Response):
                return body
            query: dict[str, Any] = dict(request.query)
            try:
                since = datetime.fromisoformat(query["since"]) if query.get("since") else None
                limit = int(query.get("limit", 1000))
                district = str(query["district"])
            except (KeyError, ValueError) as exc:
                return self.json({"error": f"bad query: {exc}"}, status=422)
            entries = await store.aaudit_entries(district, since=since, limit=limit)
            return self.json({"entries": [e.as_json() for e in entries]})
