"""The export consumer: one `export-requests` record → its status documents and, when the
request is valid, a scoped CSV, its manifest, a signed link and a mail.

Everything the flow touches comes in through the constructor (the store, the district
configs, the status publisher, the mailer, the clock), so the whole flow runs in memory in
the unit tests; the Faust agent (`streams/agents/export.py`) only loops over the topic.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

from abacus.audit import AuditEntry
from abacus.district import DistrictConfig
from abacus.domain.csvcells import export_header, write_rows
from abacus.errors import AbacusError, ExportRequestError, StorageError
from abacus.export import status
from abacus.export.links import sign_link
from abacus.export.manifest import FileFigures, StoreFigures, manifest
from abacus.export.query import ExportQuery, ExportScope
from abacus.export.request import (
    ExportRange,
    ExportRequest,
    Requester,
    parse_request,
    resolve_range,
    scope_for,
)
from abacus.export.rows import RowFormatter
from abacus.mail import LinkMail
from abacus.settings import AbacusSettings

__all__ = [
    "ExportConsumer",
    "ExportJob",
    "ExportOutcome",
    "ExportResult",
    "ExportStore",
    "Publish",
]

log = logging.getLogger(__name__)
T = TypeVar("T")
Publish = Callable[[dict[str, Any]], Awaitable[None]]
_PROGRESS_EVERY = 10_000


class ExportStore(Protocol):
    """What an export reads (`abacus.store.store.Store` in the worker; a fake in tests)."""

    async def arequester(self, district_id: str, employee_id: str) -> Requester | None: ...

    async def astream_export(self, query: ExportQuery, sink: Callable[[Iterator[Any]], T]) -> T: ...

    async def afigures(self, district_id: str) -> StoreFigures: ...

    async def aaudit(self, *entries: AuditEntry) -> None: ...


@dataclass(frozen=True)
class ExportJob:
    """A validated request, ready to run."""

    request: ExportRequest
    config: DistrictConfig
    range: ExportRange
    scope: ExportScope
    requester_email: str

    @property
    def query(self) -> ExportQuery:
        r = self.request
        return ExportQuery(
            r.district_id, self.range.start, self.range.end, self.range.school_year_start,
            r.product, self.scope,
        )  # fmt: skip


@dataclass(frozen=True)
class ExportResult:
    written: FileFigures
    csv_path: Path
    manifest_path: Path
    link: str
    seconds: float


@dataclass(frozen=True)
class ExportOutcome:
    """How one request ended (completed, rejected or failed), for the worker's counters."""

    name: str
    seconds: float | None = None


class ExportConsumer:
    """Validates requests and writes exports, one at a time; one instance per worker."""

    def __init__(
        self,
        settings: AbacusSettings,
        store: ExportStore,
        districts: Mapping[str, DistrictConfig],
        publish: Publish,
        *,
        mail: Callable[[LinkMail], None] | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.store = store
        self.districts = districts
        self.publish = publish
        self.mail = mail
        self.now = now

    async def handle(self, payload: bytes | None) -> ExportOutcome:
        """The whole flow for one record; a bad request or a store failure becomes a
        `failed` status, never an exception."""
        request_id = status.request_id_of(payload)
        try:
            job = await self.prepare(payload or b"")
            await self.store.aaudit(self._requested(job))
        except ExportRequestError as exc:
            await self.publish(status.failed(request_id, str(exc), self.now()))
            return ExportOutcome("rejected")
        except StorageError as exc:
            log.error("export %s could not be checked: %s", request_id, exc)
            await self.publish(status.failed(request_id, status.GENERATION_FAILED, self.now()))
            return ExportOutcome("failed")
        await self.publish(status.accepted(request_id, job.range, job.scope, self.now()))
        await self.publish(status.progress(request_id, 0, self.now()))
        loop = asyncio.get_running_loop()

        def progress(rows: int) -> None:  # called on the store's thread
            doc = status.progress(request_id, rows, self.now())
            asyncio.run_coroutine_threadsafe(self.publish(doc), loop)

        try:
            result = await self.run(job, progress)
        except StorageError as exc:
            log.error("export %s failed: %s", request_id, exc)
            await self.publish(status.failed(request_id, status.GENERATION_FAILED, self.now()))
            return ExportOutcome("failed")
        await self.publish(
            status.completed(
                request_id,
                result.written,
                link=result.link,
                csv_path=result.csv_path,
                manifest_path=result.manifest_path,
                seconds=result.seconds,
                at=self.now(),
            )
        )
        await self._send_mail(job, result)
        return ExportOutcome("completed", result.seconds)

    async def prepare(self, payload: bytes) -> ExportJob:
        """Parse and validate a request record; raise ExportRequestError with the reason."""
        request = parse_request(payload)
        config = self.districts.get(request.district_id)
        if config is None:
            raise ExportRequestError(f"unknown district {request.district_id!r}")
        today = self.now().astimezone(ZoneInfo(config.timezone)).date()
        export_range = resolve_range(request, config, today)
        requester = await self.store.arequester(request.district_id, request.requester)
        scope = scope_for(request, requester)
        assert requester is not None  # scope_for refuses an unknown requester
        return ExportJob(request, config, export_range, scope, requester.email)

    async def run(
        self, job: ExportJob, progress: Callable[[int], None] = lambda rows: None
    ) -> ExportResult:
        """Stream the export query into a CSV next to its manifest; atomic renames."""
        started = time.perf_counter()
        request = job.request
        folder = self.settings.export_dir / request.district_id
        folder.mkdir(parents=True, exist_ok=True)
        csv_path = folder / f"{request.request_id}.csv"
        partial = csv_path.with_suffix(".csv.partial")
        formatter = RowFormatter(job.config)
        header = export_header(corrected=request.corrected_headers)

        def cells(rows: Iterator[Any]) -> Iterator[list[str]]:
            for n, row in enumerate(rows, 1):
                yield formatter.cells(row)
                if n % _PROGRESS_EVERY == 0:
                    progress(n)

        def write(rows: Iterator[Any]) -> FileFigures:
            # On the store's thread as rows stream in (file I/O stays off the event loop).
            # Opened here, so a retried query rewrites the file from its start.
            with partial.open("w", encoding="utf-8", newline="") as fh:
                count = write_rows(cells(rows), fh, header=header)
            digest, size = _sha256(partial)
            os.replace(partial, csv_path)
            return FileFigures(count, size, digest)

        written = await self.store.astream_export(job.query, write)
        link = self._link(request, csv_path)
        figures = await self.store.afigures(request.district_id)
        seconds = time.perf_counter() - started
        doc = manifest(
            request,
            job.range,
            job.scope,
            written,
            figures,
            generated_at=self.now(),
            seconds=seconds,
        )
        manifest_path = csv_path.with_suffix(".manifest.json")
        text = json.dumps(doc, indent=2, default=str) + "\n"
        await asyncio.to_thread(manifest_path.write_text, text)
        return ExportResult(written, csv_path, manifest_path, link, seconds)

    def _requested(self, job: ExportJob) -> AuditEntry:
        r = job.request
        detail = f"{r.product} {job.range.start}..{job.range.end} ({job.scope.kind})"
        return AuditEntry(
            self.now(), r.district_id, r.requester, "export.requested", r.request_id, detail
        )

    def _link(self, request: ExportRequest, csv_path: Path) -> str:
        web = self.settings.web
        return sign_link(
            web.base_url,
            f"/exports/{request.district_id}/{csv_path.name}",
            key=web.signing_key.get_secret_value().encode(),
            expires=int(self.now().timestamp()) + web.link_ttl_s,
            requester=request.requester,
        )

    async def _send_mail(self, job: ExportJob, result: ExportResult) -> None:
        if self.mail is None or not job.requester_email:
            return
        request = job.request
        mail = LinkMail(
            job.requester_email, request.district_id, request.request_id, result.link,
            result.written.rows,
        )  # fmt: skip
        try:
            await asyncio.to_thread(self.mail, mail)
        except AbacusError as exc:
            log.warning("export %s: %s", request.request_id, exc)


def _sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
