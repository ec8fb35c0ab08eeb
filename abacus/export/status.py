"""The documents an export publishes on `export-status`: accepted, progress, completed, failed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from abacus.errors import StorageError
from abacus.export.manifest import FileFigures
from abacus.export.query import ExportScope
from abacus.export.request import ExportRange

__all__ = [
    "FINAL_STATUSES",
    "GENERATION_FAILED",
    "INTERNAL_FAILURE",
    "WRITE_FAILED",
    "RequestRef",
    "accepted",
    "completed",
    "crashed_reason",
    "encode",
    "failed",
    "failure_reason",
    "progress",
    "ref_of",
    "request_id_of",
]

FINAL_STATUSES = ("completed", "failed")
# What a requester is told when an accepted export fails (details go to the log): the
# store failed, the file system refused the files, or anything else went wrong (a bug).
GENERATION_FAILED = "the export could not be generated"
WRITE_FAILED = "the export file could not be written"
INTERNAL_FAILURE = "the export could not be generated (internal error)"


@dataclass(frozen=True)
class RequestRef:
    """Whose request a status answers. A request id is unique per district and belongs to
    its requester, so readers match all three (``district_id`` and ``requester`` are None
    only for a record too broken to name them)."""

    request_id: str
    district_id: str | None = None
    requester: str | None = None


def _doc(ref: RequestRef, status: str, at: datetime, **fields: Any) -> dict[str, Any]:
    return {
        "request_id": ref.request_id,
        "district_id": ref.district_id,
        "requester": ref.requester,
        "status": status,
        "at": at.isoformat(),
        **fields,
    }


def accepted(
    ref: RequestRef, export_range: ExportRange, scope: ExportScope, at: datetime
) -> dict[str, Any]:
    dates = {"start": export_range.start.isoformat(), "end": export_range.end.isoformat()}
    return _doc(ref, "accepted", at, range=dates, scope=scope.kind)


def progress(ref: RequestRef, rows: int, at: datetime) -> dict[str, Any]:
    return _doc(ref, "progress", at, rows=rows)


def completed(
    ref: RequestRef,
    written: FileFigures,
    *,
    link: str,
    expires_at: datetime,
    csv_path: Path,
    manifest_path: Path,
    seconds: float,
    at: datetime,
) -> dict[str, Any]:
    """The export is ready; the link and the files last until ``expires_at``."""
    return _doc(
        ref,
        "completed",
        at,
        rows=written.rows,
        bytes=written.bytes,
        sha256=written.sha256,
        link=link,
        expires_at=expires_at.isoformat(),
        path=str(csv_path),
        manifest=str(manifest_path),
        seconds=round(seconds, 3),
    )


def failed(ref: RequestRef, reason: str, at: datetime) -> dict[str, Any]:
    return _doc(ref, "failed", at, reason=reason)


def failure_reason(exc: BaseException) -> str:
    """The reason a requester reads for an export that failed with ``exc``: its kind, never
    the details (they may name paths or servers; the log has them)."""
    if isinstance(exc, StorageError):
        return GENERATION_FAILED
    if isinstance(exc, OSError):
        return WRITE_FAILED
    return INTERNAL_FAILURE


def crashed_reason(crashes: int) -> str:
    """Why a request that stopped the worker every time it ran is not run again."""
    return (
        f"the export stopped the worker {crashes} time(s) and was not run again; "
        "send the request again with a new id, and tell the operators"
    )


def encode(doc: dict[str, Any]) -> tuple[bytes, bytes]:
    """(key, value) of the status record: keyed by request id, JSON value."""
    return str(doc["request_id"]).encode(), json.dumps(doc).encode()


def ref_of(payload: bytes | None) -> RequestRef:
    """Whose request a record is, even a malformed one (request id "unknown" if none)."""
    try:
        doc = json.loads(payload or b"")
        fields = ("request_id", "district_id", "requester")
        value, district, requester = (doc.get(k) for k in fields)
    except (ValueError, AttributeError):
        return RequestRef("unknown")
    return RequestRef(
        str(value) if value else "unknown",
        district if isinstance(district, str) else None,
        requester if isinstance(requester, str) else None,
    )


def request_id_of(payload: bytes | None) -> str:
    """The request id of a request record, even a malformed one ("unknown" if none)."""
    return ref_of(payload).request_id
