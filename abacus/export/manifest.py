"""The manifest written beside each export: what was asked, what was written, what it covers."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from abacus.export.query import ExportScope
from abacus.export.request import ExportRange, ExportRequest

__all__ = ["FileFigures", "StoreFigures", "manifest"]


@dataclass(frozen=True)
class FileFigures:
    """The CSV as written: data rows, bytes and SHA-256."""

    rows: int
    bytes: int
    sha256: str


@dataclass(frozen=True)
class StoreFigures:
    """What the aggregates reflect: the roster version and the next offset per events
    partition that ingest had stored, in the broker epoch named (a new embedded broker
    starts its offsets at 0 again), and how far the rollups were complete in that epoch
    (`abacus.export.coverage`)."""

    roster_version: int
    events_offsets: dict[int, int]
    broker_epoch: str = ""
    rollup_watermark: dict[int, int] = field(default_factory=dict)


def manifest(
    request: ExportRequest,
    export_range: ExportRange,
    scope: ExportScope,
    written: FileFigures,
    store: StoreFigures,
    *,
    source: str = "rollups",
    generated_at: datetime,
    expires_at: datetime,
    seconds: float,
) -> dict[str, Any]:
    """The manifest document (JSON-ready); the files are deleted after ``expires_at``."""
    return {
        "request": request.model_dump(mode="json"),
        "requester": request.requester,
        "scope": asdict(scope),
        "range": {
            "start": export_range.start.isoformat(),
            "end": export_range.end.isoformat(),
            "school_year_start": export_range.school_year_start.isoformat(),
        },
        "rows": written.rows,
        "bytes": written.bytes,
        "sha256": written.sha256,
        "roster_version": store.roster_version,
        "generated_at": generated_at.isoformat(),
        "expires_at": expires_at.isoformat(),
        "seconds": round(seconds, 3),
        "broker_epoch": store.broker_epoch,
        "events_offsets": {str(p): o for p, o in sorted(store.events_offsets.items())},
        # Where the sums came from: "rollups" (complete up to rollup_watermark, which
        # reaches events_offsets) or "facts" (the rollups were behind).
        "aggregates": source,
        "rollup_watermark": {str(p): o for p, o in sorted(store.rollup_watermark.items())},
    }
