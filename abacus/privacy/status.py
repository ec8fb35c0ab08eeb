"""The documents a deletion publishes on `privacy-status`: accepted, completed, failed (pure).

A completed status carries the signed receipt, so `abacus privacy delete --wait` can print
it from any machine that reaches the broker.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

__all__ = ["FINAL_STATUSES", "accepted", "completed", "encode", "failed", "request_id_of"]

FINAL_STATUSES = ("completed", "failed")


def _doc(request_id: str, status: str, at: datetime, **fields: Any) -> dict[str, Any]:
    return {"request_id": request_id, "status": status, "at": at.isoformat(), **fields}


def accepted(request_id: str, kind: str, students: int, at: datetime) -> dict[str, Any]:
    return _doc(request_id, "accepted", at, kind=kind, students=students)


def completed(
    request_id: str, receipt: dict[str, Any] | None, receipt_path: str | None, at: datetime
) -> dict[str, Any]:
    return _doc(request_id, "completed", at, receipt=receipt, receipt_path=receipt_path)


def failed(request_id: str, reason: str, at: datetime) -> dict[str, Any]:
    return _doc(request_id, "failed", at, reason=reason)


def encode(doc: dict[str, Any]) -> tuple[bytes, bytes]:
    """(key, value) of the status record: keyed by request id, JSON value."""
    return str(doc["request_id"]).encode(), json.dumps(doc, sort_keys=True).encode()


def request_id_of(payload: bytes | None) -> str:
    """The request id of a request record, even a malformed one ("unknown" if none)."""
    try:
        value = json.loads(payload or b"").get("request_id")
    except (ValueError, AttributeError):
        return "unknown"
    return str(value)[:80] if value else "unknown"
