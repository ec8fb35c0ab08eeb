"""An export request as the portal lists it: who asked for what, and where it stands (pure).

One `export_jobs` row per request, replaced at each status: ``queued`` when the portal
sent it, then ``accepted`` (in progress), ``completed`` (rows, bytes) or ``failed``
(reason), as the export consumer publishes them on `export-status`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from abacus.catalog import EXPORT_JOBS
from abacus.export.request import ExportRequest

__all__ = ["FINAL", "PRODUCT_LABELS", "STATUS_LABELS", "ExportJobView"]

STATUS_LABELS = {
    "queued": "Queued",
    "accepted": "In progress",
    "progress": "In progress",
    "completed": "Completed",
    "failed": "Failed",
}
FINAL = frozenset({"completed", "failed"})
PRODUCT_LABELS = {"prek2": "PreK-2", "g3plus": "Grade 3+", "both": "PreK-2 and Grade 3+"}


@dataclass(frozen=True, slots=True)
class ExportJobView:
    """One request and its latest status."""

    district_id: str
    request_id: str
    requester: str
    product: str
    range_kind: str
    start: date | None
    end: date | None
    status: str
    reason: str
    rows: int
    bytes: int
    requested_at: datetime
    updated_at: datetime
    version: int

    @classmethod
    def queued(cls, request: ExportRequest, at: datetime) -> ExportJobView:
        return cls(
            request.district_id, request.request_id, request.requester, request.product,
            request.range, request.start, request.end, "queued", "", 0, 0, at, at,
            _version(at),
        )  # fmt: skip

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> ExportJobView:
        """From an `export_jobs` row in the catalog's column order."""
        return cls(*row)

    def row(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in EXPORT_JOBS.columns)

    def with_status(self, doc: Mapping[str, Any], at: datetime) -> ExportJobView:
        """This job after the status document ``doc`` (from `export-status`) at ``at``."""
        status = str(doc.get("status", self.status))
        version = max(self.version + 1, _version(at))  # rises even within one microsecond
        changes: dict[str, Any] = {"status": status, "updated_at": at, "version": version}
        if status == "accepted" and isinstance(doc.get("range"), Mapping):
            changes["start"] = date.fromisoformat(doc["range"]["start"])
            changes["end"] = date.fromisoformat(doc["range"]["end"])
        if status in ("progress", "completed"):
            changes["rows"] = int(doc.get("rows") or 0)
        if status == "completed":
            changes["bytes"] = int(doc.get("bytes") or 0)
        if status == "failed":
            changes["reason"] = str(doc.get("reason") or "")
        if self.status in FINAL and status not in FINAL:
            return self  # a late progress document never reopens a finished job
        return replace(self, **changes)

    @property
    def final(self) -> bool:
        return self.status in FINAL

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)

    @property
    def product_label(self) -> str:
        return PRODUCT_LABELS.get(self.product, self.product)

    @property
    def range_label(self) -> str:
        if self.start is None or self.end is None:
            return "Year to date" if self.range_kind == "ytd" else "Custom"
        prefix = "Year to date: " if self.range_kind == "ytd" else ""
        return f"{prefix}{self.start.isoformat()} to {self.end.isoformat()}"


def _version(at: datetime) -> int:
    return int(at.timestamp() * 1_000_000)
