"""The export consumer: a request becomes a scoped, validated CSV plus its manifest.

Blocking I/O only (ClickHouse, files); the Faust agent in streams/agents/export.py runs it
on the store's thread and publishes the status events it returns.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from abacus.district import DistrictConfig
from abacus.domain.csvcells import export_header, neutralize
from abacus.errors import ExportRequestError
from abacus.export.links import sign_link
from abacus.export.query import ExportScope, export_sql, scope_sql_params
from abacus.export.request import ExportRange, ExportRequest, parse_request, resolve_range
from abacus.export.rows import RowFormatter
from abacus.settings import AbacusSettings
from abacus.store.client import Client

__all__ = ["ExportConsumer", "ExportJob", "ExportResult"]

log = logging.getLogger(__name__)
_SCOPES = {1: "teacher", 2: "building", 3: "district", 4: "district"}
_PROGRESS_EVERY = 10_000


@dataclass(frozen=True)
class ExportJob:
    """A validated request, ready to run."""

    request: ExportRequest
    config: DistrictConfig
    range: ExportRange
    scope: ExportScope
    requester_email: str


@dataclass(frozen=True)
class ExportResult:
    rows: int
    bytes: int
    sha256: str
    csv_path: Path
    manifest_path: Path
    link: str
    seconds: float


class ExportConsumer:
    """Validates requests and writes exports; one instance per worker."""

    def __init__(
        self,
        settings: AbacusSettings,
        client: Client,
        districts: Mapping[str, DistrictConfig],
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        *,
        broker_epoch: str = "",
    ) -> None:
        self.settings = settings
        self.broker_epoch = broker_epoch
        self.client = client
        self.db = settings.clickhouse.database
        self.districts = districts
        self.now = now

    # -- validation -----------------------------------------------------------------------

    def prepare(self, payload: bytes) -> ExportJob:
        """Parse and validate a request record; raise ExportRequestError with the reason."""
        request = parse_request(payload)
        config = self.districts.get(request.district_id)
        if config is None:
            raise ExportRequestError(f"unknown district {request.district_id!r}")
        today = self.now().astimezone(ZoneInfo(config.timezone)).date()
        export_range = resolve_range(request, config, today)
        scope, email = self._scope(request)
        return ExportJob(request, config, export_range, scope, email)

    def _scope(self, request: ExportRequest) -> tuple[ExportScope, str]:
        rows = self.client.query(
            f"SELECT user_type, buildings, email FROM {self.db}.roster_users FINAL "  # noqa: S608
            "WHERE district_id = {d:String} AND employee_id = {e:String} AND is_active = 1",
            parameters={"d": request.district_id, "e": request.requester},
        ).result_rows
        if not rows:
            raise ExportRequestError(
                f"requester {request.requester!r} is not an active user of this district"
            )
        user_type, buildings, email = rows[0]
        kind = _SCOPES.get(int(user_type))
        if kind is None:
            raise ExportRequestError(f"requester has an unknown User_Type {user_type}")
        return ExportScope(kind, request.requester, tuple(buildings)), email  # type: ignore[arg-type]

    # -- the export -----------------------------------------------------------------------

    def run(self, job: ExportJob, progress: Callable[[int], None]) -> ExportResult:
        """Stream the export query into a CSV next to its manifest; atomic renames."""
        started = time.perf_counter()
        request = job.request
        folder = self.settings.export_dir / request.district_id
        folder.mkdir(parents=True, exist_ok=True)
        csv_path = folder / f"{request.request_id}.csv"
        partial = csv_path.with_suffix(".csv.partial")
        params = {
            "district": request.district_id,
            "start": job.range.start,
            "end": job.range.end,
            "year_start": job.range.school_year_start,
            "product": request.product,
            **scope_sql_params(job.scope),
        }
        formatter = RowFormatter(job.config)
        rows = 0
        with partial.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
            writer.writerow(export_header(corrected=request.corrected_headers))
            with self.client.query_row_block_stream(export_sql(self.db), parameters=params) as st:
                for block in st:
                    for row in block:
                        writer.writerow([neutralize(c) for c in formatter.cells(row)])
                        rows += 1
                        if rows % _PROGRESS_EVERY == 0:
                            progress(rows)
        digest, size = _sha256(partial)
        os.replace(partial, csv_path)
        path = f"/exports/{request.district_id}/{csv_path.name}"
        expires = int(self.now().timestamp()) + self.settings.web.link_ttl_s
        link = sign_link(
            self.settings.web.base_url,
            path,
            key=self.settings.web.signing_key.get_secret_value().encode(),
            expires=expires,
            requester=request.requester,
        )
        seconds = time.perf_counter() - started
        manifest_path = csv_path.with_suffix(".manifest.json")
        manifest = self._manifest(job, rows, size, digest, seconds)
        manifest_path.write_text(json.dumps(manifest, indent=2, default=str) + "\n")
        return ExportResult(rows, size, digest, csv_path, manifest_path, link, seconds)

    def _manifest(
        self, job: ExportJob, rows: int, size: int, digest: str, seconds: float
    ) -> dict[str, Any]:
        db, district = self.db, job.request.district_id
        roster_version = self.client.query(
            f"SELECT max(version) FROM {db}.roster_students WHERE district_id = {{d:String}}",  # noqa: S608
            parameters={"d": district},
        ).result_rows[0][0]
        offsets = self.client.query(
            f"SELECT src_partition, max(src_offset) FROM {db}.events "  # noqa: S608
            "WHERE src_epoch = {epoch:String} GROUP BY src_partition ORDER BY src_partition",
            parameters={"epoch": self.broker_epoch},
        ).result_rows
        return {
            "request": job.request.model_dump(mode="json"),
            "requester": job.request.requester,
            "scope": asdict(job.scope),
            "range": {
                "start": job.range.start.isoformat(),
                "end": job.range.end.isoformat(),
                "school_year_start": job.range.school_year_start.isoformat(),
            },
            "rows": rows,
            "bytes": size,
            "sha256": digest,
            "roster_version": int(roster_version or 0),
            "generated_at": self.now().isoformat(),
            "seconds": round(seconds, 3),
            # The ingest position the aggregates reflect: next offset per events partition,
            # in this broker epoch (a new embedded broker starts its offsets at 0 again).
            "broker_epoch": self.broker_epoch,
            "events_offsets": {str(p): int(o) + 1 for p, o in offsets},
        }


def _sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
