"""The manifest written beside each export: what was asked, what was written, what it covers."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime
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
    starts its offsets at 0 again), and how far the rollups were complete
    (`abacus.aggregation.closing`): the district's last closed day, the last late-key
    sequence number written for it, and the last one rebuilt."""

    roster_version: int
    events_offsets: dict[int, int]
    broker_epoch: str = ""
    rollups_closed: date | None = None
    late_pending: int = 0
    late_done: int = 0


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
        # Where the sums came from: "rollups" (every day up to closed_through built, and
        # every late key written before the export rebuilt) or "facts" (they lagged).
        "aggregates": source,
        "rollup_watermark": {
            "closed_through": store.rollups_closed.isoformat() if store.rollups_closed else None,
            "late_keys_written": store.late_pending,
            "late_keys_rebuilt": store.late_done,
        },
    }
