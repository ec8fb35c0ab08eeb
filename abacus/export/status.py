"""The documents an export publishes on `export-status`: accepted, progress, completed, failed."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from abacus.export.manifest import FileFigures
from abacus.export.query import ExportScope
from abacus.export.request import ExportRange

__all__ = [
    "FINAL_STATUSES",
    "GENERATION_FAILED",
    "accepted",
    "completed",
    "encode",
    "failed",
    "progress",
    "request_id_of",
]

FINAL_STATUSES = ("completed", "failed")
# What a requester is told when the store fails mid-export (details go to the log).
GENERATION_FAILED = "the export could not be generated"


def _doc(request_id: str, status: str, at: datetime, **fields: Any) -> dict[str, Any]:
    return {"request_id": request_id, "status": status, "at": at.isoformat(), **fields}


def accepted(
    request_id: str, export_range: ExportRange, scope: ExportScope, at: datetime
) -> dict[str, Any]:
    dates = {"start": export_range.start.isoformat(), "end": export_range.end.isoformat()}
    return _doc(request_id, "accepted", at, range=dates, scope=scope.kind)


def progress(request_id: str, rows: int, at: datetime) -> dict[str, Any]:
    return _doc(request_id, "progress", at, rows=rows)


def completed(
    request_id: str,
    written: FileFigures,
    *,
    link: str,
    csv_path: Path,
    manifest_path: Path,
    seconds: float,
    at: datetime,
) -> dict[str, Any]:
    return _doc(
        request_id,
        "completed",
        at,
        rows=written.rows,
        bytes=written.bytes,
        sha256=written.sha256,
        link=link,
        path=str(csv_path),
        manifest=str(manifest_path),
        seconds=round(seconds, 3),
    )


def failed(request_id: str, reason: str, at: datetime) -> dict[str, Any]:
    return _doc(request_id, "failed", at, reason=reason)


def encode(doc: dict[str, Any]) -> tuple[bytes, bytes]:
    """(key, value) of the status record: keyed by request id, JSON value."""
    return str(doc["request_id"]).encode(), json.dumps(doc).encode()


def request_id_of(payload: bytes | None) -> str:
    """The request id of a request record, even a malformed one ("unknown" if none)."""
    try:
        value = json.loads(payload or b"").get("request_id")
    except (ValueError, AttributeError):
        return "unknown"
    return str(value) if value else "unknown"
