"""The export consumer: one `export-requests` record → its status documents and, when the
request is valid, a scoped CSV, its manifest, a signed link and a mail.

Everything the flow touches comes in through the constructor (the store, the district
configs, the status publisher, the mailer, the clock), so the whole flow runs in memory in
the unit tests; the Faust agent (`streams/agents/export.py`) only loops over the topic.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

from abacus.aggregation.closing import rollups_cover
from abacus.audit import AuditEntry
from abacus.district import DistrictConfig
from abacus.domain.csvcells import export_header, write_rows
from abacus.errors import AbacusError, ExportRequestError, StorageError
from abacus.export import status
from abacus.export.aggregates import Source
from abacus.export.claims import ExportClaim, check_claim, claim_of
from abacus.export.files import ExportPathError, ExportPaths, export_paths
from abacus.export.jobs import PRODUCT_LABELS
from abacus.export.links import portal_link, sign_link
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
from abacus.mail import LinkMail
from abacus.settings import AbacusSettings

__all__ = [
    "ExportConsumer",
    "ExportJob",
    "ExportOutcome",
    "ExportResult",
    "ExportStore",
    "Publish",
    "StatusHook",
]

log = logging.getLogger(__name__)
T = TypeVar("T")
Publish = Callable[[dict[str, Any]], Awaitable[None]]
# Told each status document with the request it is about (None when the record did not
# parse): the worker's portal keeps its list of exports current with it.
StatusHook = Callable[[ExportRequest | None, dict[str, Any]], Awaitable[None]]
_PROGRESS_EVERY = 10_000
_WATERMARK_POLL_S = 0.2


class ExportStore(Protocol):
    """What an export reads (`abacus.store.store.Store` in the worker; a fake in tests)."""

    async def arequester(self, district_id: str, employee_id: str) -> Requester | None: ...

    async def astream_export(
        self,
        query: ExportQuery,
        config: DistrictConfig,
        sink: Callable[[Iterator[str]], T],
        source: Source = ...,
    ) -> T: ...

    async def afigures(self, district_id: str, broker_epoch: str) -> StoreFigures: ...

    async def arollup_marks(self) -> tuple[dict[str, date], int, int]: ...
    async def aaudit(self, *entries: AuditEntry) -> None: ...

    async def aexport_claim(self, district_id: str, request_id: str) -> ExportClaim | None: ...

    async def aclaim_export(self, claim: ExportClaim, at: datetime) -> None: ...


@dataclass(frozen=True)
class ExportJob:
    """A validated request, ready to run."""

    request: ExportRequest
    config: DistrictConfig
    range: ExportRange
    scope: ExportScope
    requester_email: str
    paths: ExportPaths
    redelivered: bool = False  # the same record again (a crash before its offset commit)

    @property
    def ref(self) -> status.RequestRef:
        r = self.request
        return status.RequestRef(r.request_id, r.district_id, r.requester)

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
    expires_at: datetime
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
        broker_epoch: str = "",
        on_status: StatusHook | None = None,
        want_rollups: Callable[[], None] = lambda: None,
    ) -> None:
        self.settings = settings
        # Called while an export waits for the rollups: the rollup service runs a pass.
        self.want_rollups = want_rollups
        self.store = store
        self.broker_epoch = broker_epoch
        self.districts = districts
        self.publish = publish
        self.mail = mail
        self.now = now
        self.on_status = on_status
        # Waits between tries of a final status the broker refuses (then it escapes).
        self.publish_retry_s: tuple[float, ...] = (1.0, 4.0, 15.0)

    async def handle(self, payload: bytes | None) -> ExportOutcome:
        """The whole flow for one record. It always ends in a published `completed` or
        `failed` status: a bad request, a store failure, a file that cannot be written or
        a bug of ours becomes `failed` with a reason, never an exception. The one thing
        that raises (StackError) is a final status the broker would not take after
        `publish_retry_s`: the caller must then not ack the record, so it is delivered
        again (it matches its claim and runs again)."""
        ref = status.ref_of(payload)
        parsed = _parsed(payload)
        try:
            job = await self.prepare(payload or b"")
            if not job.redelivered:
                # Claimed before any file is written: a crash from here on redelivers a
                # record that matches its claim, and it runs again.
                await self.store.aclaim_export(claim_of(job.request), self.now())
                await self.store.aaudit(self._requested(job))
        except ExportRequestError as exc:
            await self._final(parsed, status.failed(ref, str(exc), self.now()))
            return ExportOutcome("rejected")
        except Exception as exc:  # noqa: BLE001 - any failure ends as a failed status
            _log_failure(ref, "could not be checked", exc)
            await self._final(parsed, status.failed(ref, status.failure_reason(exc), self.now()))
            return ExportOutcome("failed")
        ref = job.ref
        await self._inform(parsed, status.accepted(ref, job.range, job.scope, self.now()))
        await self._inform(parsed, status.progress(ref, 0, self.now()))
        loop = asyncio.get_running_loop()

        def progress(rows: int) -> None:  # called on the store's thread
            doc = status.progress(ref, rows, self.now())
            asyncio.run_coroutine_threadsafe(self._inform(parsed, doc), loop)

        try:
            result = await self.run(job, progress)
        except Exception as exc:  # noqa: BLE001 - any failure ends as a failed status
            _log_failure(ref, "failed", exc)
            await self._final(parsed, status.failed(ref, status.failure_reason(exc), self.now()))
            return ExportOutcome("failed")
        await self._final(
            parsed,
            status.completed(
                ref,
                result.written,
                link=result.link,
                expires_at=result.expires_at,
                csv_path=result.csv_path,
                manifest_path=result.manifest_path,
                seconds=result.seconds,
                at=self.now(),
            ),
        )
        await self._send_mail(job, result)
        return ExportOutcome("completed", result.seconds)

    async def give_up(self, payload: bytes | None, crashes: int) -> ExportOutcome:
        """A request whose every run stopped the worker (it died mid-export ``crashes``
        times, e.g. out of memory): `failed`, without running it again."""
        ref, parsed = status.ref_of(payload), _parsed(payload)
        log.error(
            "export %s stopped the worker %d time(s); not running it again", ref.request_id, crashes
        )
        await self._final(parsed, status.failed(ref, status.crashed_reason(crashes), self.now()))
        return ExportOutcome("failed")

    async def _inform(self, request: ExportRequest | None, doc: dict[str, Any]) -> None:
        """Publish an intermediate status (accepted, progress): one that cannot be sent is
        logged, and the export goes on; the final status says how it ended."""
        try:
            await self.publish(doc)
        except Exception as exc:  # noqa: BLE001 - a lost progress note must not stop the export
            log.warning(
                "export %s: %s status not published (%s)",
                doc["request_id"],
                doc["status"],
                type(exc).__name__,
            )
            return
        await self._notify(request, doc)

    async def _notify(self, request: ExportRequest | None, doc: dict[str, Any]) -> None:
        """Tell the status hook (the portal's board) about a published status; a failure
        there is logged and changes nothing about the export."""
        if self.on_status is None:
            return
        try:
            await self.on_status(request, doc)
        except Exception as exc:  # noqa: BLE001 - the board is a view; the export stands
            log.error("export %s: status hook failed (%s)", doc["request_id"], type(exc).__name__)

    async def _final(self, request: ExportRequest | None, doc: dict[str, Any]) -> None:
        """Publish a final status (completed, failed), trying again after each wait of
        `publish_retry_s`; then the last error escapes (see `handle`)."""
        for wait in (*self.publish_retry_s, None):
            try:
                await self.publish(doc)
                break
            except Exception as exc:
                if wait is None:
                    log.error(
                        "export %s: %s status not published: %s",
                        doc["request_id"],
                        doc["status"],
                        exc,
                    )
                    raise
                log.warning(
                    "export %s: %s status not published (%s), trying again in %gs",
                    doc["request_id"],
                    doc["status"],
                    type(exc).__name__,
                    wait,
                )
                await asyncio.sleep(wait)
        await self._notify(request, doc)

    async def prepare(self, payload: bytes) -> ExportJob:
        """Parse and validate a request record; raise ExportRequestError with the reason."""
        request = parse_request(payload)
        config = self.districts.get(request.district_id)
        if config is None:
            raise ExportRequestError(f"unknown district {request.district_id!r}")
        try:
            paths = export_paths(self.settings.export_dir, request.district_id, request.request_id)
        except ExportPathError as exc:  # the request's own patterns refuse these already
            raise ExportRequestError(f"invalid request: {exc}") from exc
        claim = await self.store.aexport_claim(request.district_id, request.request_id)
        redelivered = check_claim(request, claim)
        today = self.now().astimezone(ZoneInfo(config.timezone)).date()
        export_range = resolve_range(request, config, today)
        requester = await self.store.arequester(request.district_id, request.requester)
        scope = scope_for(request, requester)
        assert requester is not None  # scope_for refuses an unknown requester
        return ExportJob(request, config, export_range, scope, requester.email, paths, redelivered)

    async def run(
        self, job: ExportJob, progress: Callable[[int], None] = lambda rows: None
    ) -> ExportResult:
        """Stream the export query into a CSV next to its manifest; atomic renames, the
        CSV last, so its final name exists only once the export is whole."""
        started = time.perf_counter()
        request = job.request
        paths = job.paths
        # Export files hold student data: only the worker's user may read them.
        self.settings.export_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        paths.folder.mkdir(mode=0o700, exist_ok=True)
        partial = paths.partial
        header = export_header(corrected=request.corrected_headers)

        def write(lines: Iterator[str]) -> FileFigures:
            # On the store's thread as lines stream in (file I/O stays off the event loop).
            # Opened here, so a retried query rewrites the file from its start.
            count = 0
            with _open_private(partial) as fh:
                write_rows((), fh, header=header)
                for count, line in enumerate(lines, 1):
                    fh.write(line)
                    if count % _PROGRESS_EVERY == 0:
                        progress(count)
            digest, size = _sha256(partial)
            return FileFigures(count, size, digest)

        # What the export covers is read before its query, so the query sees at least that.
        figures, source = await self._coverage(request.district_id, job.range.end)
        try:
            written = await self.store.astream_export(job.query, job.config, write, source)
            result = await self._finish(job, written, started, figures, source)
        except Exception:
            # Nothing half-written stays behind (nor a CSV without its manifest).
            await asyncio.to_thread(_remove_partials, paths)
            raise
        return result

    async def _finish(
        self,
        job: ExportJob,
        written: FileFigures,
        started: float,
        figures: StoreFigures,
        source: Source,
    ) -> ExportResult:
        """The manifest beside the written CSV, then the CSV under its final name."""
        request, paths = job.request, job.paths
        csv_path = paths.csv
        # The retention: the link expires, and the sweep deletes the files, after it.
        expires_at = self.now().replace(microsecond=0) + timedelta(
            seconds=self.settings.exports.retention_s
        )
        link = self._link(request, csv_path, expires_at)
        seconds = time.perf_counter() - started
        doc = manifest(
            request,
            job.range,
            job.scope,
            written,
            figures,
            source=source,
            generated_at=self.now(),
            expires_at=expires_at,
            seconds=seconds,
        )
        text = json.dumps(doc, indent=2, default=str) + "\n"
        await asyncio.to_thread(_write_private, paths.manifest, text)
        os.replace(paths.partial, csv_path)  # the export exists from here on
        return ExportResult(written, csv_path, paths.manifest, link, expires_at, seconds)

    async def _coverage(self, district_id: str, end: date) -> tuple[StoreFigures, Source]:
        """The figures the export claims, and where it reads: the rollups once the
        district's days up to ``end`` are closed and every late key written before it
        started is rebuilt (waiting up to ``exports.rollup_wait_s`` for the rollup service),
        else the facts (`abacus.aggregation.closing`)."""
        figures = await self.store.afigures(district_id, self.broker_epoch)
        deadline = time.monotonic() + self.settings.exports.rollup_wait_s

        def ready(f: StoreFigures) -> bool:
            return rollups_cover(end, f.rollups_closed, f.late_pending, f.late_done)

        while not ready(figures) and time.monotonic() < deadline:
            self.want_rollups()
            await asyncio.sleep(_WATERMARK_POLL_S)
            closed, done, _ = await self.store.arollup_marks()
            figures = replace(figures, rollups_closed=closed.get(district_id), late_done=done)
        if ready(figures):
            return figures, "rollups"
        log.warning(
            "rollups behind (closed through %s, late keys %d of %d rebuilt): export reads"
            " the facts", figures.rollups_closed, figures.late_done, figures.late_pending,
        )  # fmt: skip
        return figures, "facts"

    def _requested(self, job: ExportJob) -> AuditEntry:
        r = job.request
        detail = f"{r.product} {job.range.start}..{job.range.end} ({job.scope.kind})"
        return AuditEntry(
            self.now(), r.district_id, r.requester, "export.accepted", r.request_id, detail
        )

    def _link(self, request: ExportRequest, csv_path: Path, expires_at: datetime) -> str:
        web = self.settings.web
        return sign_link(
            web.base_url,
            f"/exports/{request.district_id}/{csv_path.name}",
            key=web.signing_key.get_secret_value().encode(),
            expires=int(expires_at.timestamp()),
            requester=request.requester,
        )

    async def _send_mail(self, job: ExportJob, result: ExportResult) -> None:
        if self.mail is None or not job.requester_email:
            return
        request = job.request
        # The mail links to the portal page (sign-in required), never to the signed link:
        # a forwarded mail must not hand the file to whoever holds it.
        link = portal_link(self.settings.web.base_url, request.request_id)
        mail = LinkMail(
            job.requester_email, request.district_id, request.request_id, link,
            result.written.rows, result.expires_at,
            PRODUCT_LABELS.get(request.product, request.product),
        )  # fmt: skip
        try:
            await asyncio.to_thread(self.mail, mail)
        except AbacusError as exc:
            log.warning("export %s: %s", request.request_id, exc)
        except Exception as exc:  # noqa: BLE001 - the export is done; a mail bug must not undo it
            log.error(
                "export %s: the mail was not sent (%s)", request.request_id, type(exc).__name__
            )


def _parsed(payload: bytes | None) -> ExportRequest | None:
    """The request a record holds, for the status hook (None when it does not parse)."""
    try:
        return parse_request(payload or b"")
    except ExportRequestError:
        return None


def _log_failure(ref: status.RequestRef, what: str, exc: BaseException) -> None:
    """One line for ops: the request id and the error (StorageError and OSError carry
    their own message; anything else is a bug, logged with its traceback)."""
    if isinstance(exc, StorageError | OSError):
        log.error("export %s %s: %s", ref.request_id, what, exc)
    else:
        log.exception("export %s %s: %s", ref.request_id, what, type(exc).__name__)


def _remove_partials(paths: ExportPaths) -> None:
    partial_manifest = paths.manifest.with_name(paths.manifest.name + ".partial")
    for path in (paths.partial, partial_manifest):
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            path.unlink()


def _open_private(path: Path) -> Any:
    """Open ``path`` for writing text, created (or truncated) with mode 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # a file left by an earlier attempt keeps its mode otherwise
    return os.fdopen(fd, "w", encoding="utf-8", newline="")


def _write_private(path: Path, text: str) -> None:
    """Write ``path`` atomically with mode 0600."""
    partial = path.with_name(path.name + ".partial")
    with _open_private(partial) as fh:
        fh.write(text)
    os.replace(partial, path)


def _sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
