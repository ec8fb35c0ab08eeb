"""The privacy consumer: one `privacy-requests` record → a deletion everywhere the students
(or the district) live, a signed receipt, and its statuses on `privacy-status`.

Order matters. The deny-list goes first (stored, on its topic, and in the worker's memory),
and ingest finishes the batches it prepared before, so nothing of the students can be
written after their rows are deleted. Then every table of the plan (synchronous mutations,
each checked to count 0), export files, the roster topics' keys (ClickHouse first: the
topics are restored from it after an embedded broker restart, so a deleted student is never
put back), and last the receipt. A failure leaves the deny-list in place and the request
can be sent again: every step is idempotent.

Everything the flow touches comes in through the constructor, so it runs in memory in the
unit tests; the agent (`streams/agents/privacy.py`) only loops over the topic.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from abacus.audit import AuditEntry
from abacus.catalog import PRIVACY_REQUESTS
from abacus.errors import AbacusError, PrivacyRequestError, StackError, StorageError
from abacus.export.request import Requester
from abacus.privacy import status
from abacus.privacy.deny import WHOLE_DISTRICT, DenyEntry, DenyList, dead_letter_matcher
from abacus.privacy.plan import (
    Step,
    dead_letter_step,
    district_plan,
    oneroster_state_step,
    student_plan,
)
from abacus.privacy.pseudonym import pseudonym, pseudonym_key
from abacus.privacy.receipt import (
    FileResult,
    TableResult,
    TopicResult,
    build_receipt,
    sign,
)
from abacus.privacy.request import DeletionRequest, check_requester, parse_request
from abacus.privacy.residues import residues
from abacus.settings import AbacusSettings
from abacus.store.store import StepOutcome
from consumers.privacy_files import clear_export_files
from consumers.privacy_topics import state_rows_holding

__all__ = ["PrivacyConsumer", "PrivacyOutcome", "PrivacyStore", "PrivacyTopics", "Publish"]

log = logging.getLogger(__name__)
Publish = Callable[[dict[str, Any]], Awaitable[None]]
FAILED = "the deletion could not be completed; the students stay denied, send it again"


class PrivacyStore(Protocol):
    """What a deletion reads and writes (`abacus.store.store.Store`; a fake in tests)."""

    database: str

    async def arequester(self, district_id: str, employee_id: str) -> Requester | None: ...

    async def asave_privacy_request(self, row: Sequence[Any]) -> None: ...

    async def aprivacy_request(self, request_id: str) -> tuple[Any, ...] | None: ...

    async def asave_deny(self, entries: Sequence[DenyEntry], version: int) -> None: ...

    async def arun_step(self, step: Step, passes: int = 3) -> StepOutcome: ...

    async def arun_steps(self, steps: Sequence[Step]) -> list[StepOutcome]: ...

    async def acheck_count(self, query: str, params: dict[str, str]) -> int: ...

    async def aaudit(self, *entries: AuditEntry) -> None: ...

    async def adead_letter_positions(
        self, match: Callable[[bytes | None, bytes | None], bool]
    ) -> list[tuple[str, str, int, int]]: ...

    async def adistrict_students(self, district_id: str) -> set[str]: ...

    async def aoneroster_state_rows(self, district_id: str) -> list[tuple[str, int, int, str]]: ...


class PrivacyTopics(Protocol):
    """The Kafka side (blocking calls; the consumer runs them in a thread)."""

    def publish_deny(self, entries: Sequence[DenyEntry]) -> None: ...

    def clear_roster_keys(
        self, district_id: str, students: Collection[str] | None
    ) -> list[TopicResult]: ...


@dataclass(frozen=True)
class PrivacyOutcome:
    """How one request ended (completed, rejected or failed), for the worker's counters."""

    name: str
    seconds: float | None = None


class PrivacyConsumer:
    """Carries out deletion and re-enable requests, one at a time; one per worker."""

    def __init__(
        self,
        settings: AbacusSettings,
        store: PrivacyStore,
        deny: DenyList,
        topics: PrivacyTopics,
        publish: Publish,
        *,
        barrier: Callable[[], Awaitable[None]],
        forget_district: Callable[[str], None],
        exports_lock: asyncio.Lock,
        version: str,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.store = store
        self.deny = deny
        self.topics = topics
        self.publish = publish
        self.barrier = barrier
        self.forget_district = forget_district
        self.exports_lock = exports_lock
        self.version = version
        self.now = now
        key = settings.web.signing_key.get_secret_value().encode()
        self._signing_key = key
        self._pseudonym_key = pseudonym_key(key)

    async def handle(self, payload: bytes | None) -> PrivacyOutcome:
        """The whole flow for one record; a bad request or a failure becomes a `failed`
        status (and an audit entry), never an exception."""
        request_id = status.request_id_of(payload)
        started = time.perf_counter()
        request: DeletionRequest | None = None
        try:
            request = parse_request(payload or b"")
            before = await self._before(request)
            if before is not None and before[7] == "completed":
                # Delivered again (or sent again): its receipt stands, nothing runs twice.
                receipt = json.loads(before[10])
                await self.publish(status.completed(request.request_id, receipt, None, self.now()))
                return PrivacyOutcome("completed", time.perf_counter() - started)
            if before is None:
                # A request sent again after a failure was checked when first accepted (and a
                # district deletion may have removed its requester's roster row since).
                requester = await self.store.arequester(request.district_id, request.requester)
                check_requester(request, requester.user_type if requester else None)
            if request.kind == "reenable":
                await self._reenable(request)
            else:
                await self._delete(request)
        except PrivacyRequestError as exc:
            await self._fail(request_id, payload, str(exc))
            return PrivacyOutcome("rejected")
        except (StorageError, StackError, OSError) as exc:
            log.error("privacy request %s failed: %s", request_id, exc)
            await self._fail(request_id, payload, FAILED)
            if request is not None and request.kind != "reenable":
                with contextlib.suppress(AbacusError):  # the store may be what failed
                    row = self._row(request, "failed", self.now())
                    await self.store.asave_privacy_request(row)
            return PrivacyOutcome("failed")
        return PrivacyOutcome("completed", time.perf_counter() - started)

    async def _fail(self, request_id: str, payload: bytes | None, reason: str) -> None:
        await self.publish(status.failed(request_id, reason, self.now()))
        try:
            doc = json.loads(payload or b"")
            district, actor = str(doc["district_id"]), str(doc["requester"])
        except (ValueError, KeyError, TypeError):
            return  # nothing to say whose: the status is the whole record
        entry = AuditEntry(self.now(), district[:64], actor[:64], "deletion.failed", request_id,
                           reason)  # fmt: skip
        try:
            await self.store.aaudit(entry)
        except AbacusError as exc:
            log.error("audit entry for %s not written: %s", request_id, exc)

    def _row(
        self,
        request: DeletionRequest,
        state: str,
        requested_at: datetime,
        completed_at: datetime | None = None,
        receipt: str = "",
    ) -> tuple[Any, ...]:
        pseudonyms = [self._pseudonym(request.district_id, s) for s in request.students]
        row = (
            request.district_id, request.request_id, request.kind, request.requester,
            request.reason, list(request.students), pseudonyms, state, requested_at,
            completed_at, receipt, time.time_ns(),
        )  # fmt: skip
        assert len(row) == len(PRIVACY_REQUESTS.columns)
        return row

    def _pseudonym(self, district_id: str, student_id: str) -> str:
        return pseudonym(self._pseudonym_key, district_id, student_id)

    async def _before(self, request: DeletionRequest) -> tuple[Any, ...] | None:
        """The stored row of a deletion with this request id: the same request sent again
        (completed, or to finish), or PrivacyRequestError when the id names another one."""
        if request.kind == "reenable":
            return None
        before = await self.store.aprivacy_request(request.request_id)
        same = self._row(request, "", self.now())
        # district, request id, kind, requester, reason, students
        if before is not None and tuple(before[:6]) != tuple(same[:6]):
            raise PrivacyRequestError(
                f"request id {request.request_id!r} was already used; send the request again "
                "with a new id"
            )
        return before

    async def _delete(self, request: DeletionRequest) -> None:
        requested_at = self.now()
        students = None if request.whole_district else set(request.students)
        scope = "the whole district" if students is None else f"{len(students)} student(s)"
        await self.store.aaudit(
            AuditEntry(requested_at, request.district_id, request.requester,
                       "deletion.requested", request.request_id, scope),
        )  # fmt: skip
        await self.store.asave_privacy_request(self._row(request, "accepted", requested_at))
        await self.publish(
            status.accepted(request.request_id, request.kind, len(request.students), self.now())
        )
        await self._deny(request, requested_at)
        tables, files = await self._remove(request, students)
        topics = await asyncio.to_thread(
            self.topics.clear_roster_keys, request.district_id, students
        )
        if students is None:
            self.forget_district(request.district_id)
        completed_at = self.now()
        receipt = sign(
            build_receipt(
                request, requested_at=requested_at, completed_at=completed_at, tables=tables,
                topics=topics, files=files,
                residues=residues(self.settings, sum(t.outdated_parts for t in tables)),
                software_version=self.version,
            ),
            self._signing_key,
        )  # fmt: skip
        text = json.dumps(receipt, indent=2, sort_keys=True)
        path = await asyncio.to_thread(self._write_receipt, request.request_id, text)
        await self.store.asave_privacy_request(
            self._row(request, "completed", requested_at, completed_at, text)
        )
        detail = f"{receipt['rows_removed']} row(s) removed, {len(files)} export file(s)"
        await self.store.aaudit(
            AuditEntry(completed_at, request.district_id, request.requester,
                       "deletion.completed", request.request_id, detail),
        )  # fmt: skip
        await self.publish(status.completed(request.request_id, receipt, str(path), self.now()))
        log.info("privacy request %s completed: %s", request.request_id, detail)

    async def _deny(self, request: DeletionRequest, at: datetime) -> None:
        """Deny first: from here on ingest drops their events and the roster agent their
        records; then wait for the batches ingest prepared before to be stored."""
        ids = request.students or (WHOLE_DISTRICT,)
        entries = [DenyEntry(request.district_id, s, request.request_id, at) for s in ids]
        await self.store.asave_deny(entries, time.time_ns())
        await asyncio.to_thread(self.topics.publish_deny, entries)
        self.deny.update(entries)
        await self.barrier()

    async def _remove(
        self, request: DeletionRequest, students: set[str] | None
    ) -> tuple[list[TableResult], list[FileResult]]:
        """Every table of the plan, verified, then the export files; no export is written
        meanwhile (an export's query could otherwise still hold a deleted student)."""
        steps = (
            district_plan(request.district_id)
            if students is None
            else student_plan(request.district_id, request.request_id)
        )
        # Dead letters have no district column: found by decoding them (or by their key,
        # the student id, when they cannot be read), deleted by position. First, while the
        # district's events still say who its students were.
        ids = request.students or (WHOLE_DISTRICT,)
        entries = [DenyEntry(request.district_id, s, request.request_id, self.now()) for s in ids]
        known = (
            set()
            if students is not None
            else await self.store.adistrict_students(request.district_id)
        )
        match = dead_letter_matcher(entries, known, self.now())
        steps.insert(0, dead_letter_step(await self.store.adead_letter_positions(match)))
        if students is not None:
            # The OneRoster state: no column names a student; every stored version of a
            # bucket holding them goes (the topic gets the buckets rewritten without them,
            # which the roster consumer stores afresh).
            state = await self.store.aoneroster_state_rows(request.district_id)
            found = await asyncio.to_thread(state_rows_holding, state, students)
            steps.append(oneroster_state_step(request.district_id, request.request_id, found))
        db = self.store.database
        async with self.exports_lock:
            done_steps = await self.store.arun_steps(steps)
            outcomes = {step.table.name: done for step, done in zip(steps, done_steps, strict=True)}
            tables = []
            for step in steps:  # verified once every step ran (a link's check reads events)
                query, params = step.check_sql(db), step.parameters
                result = await self.store.acheck_count(query, params)
                if result:
                    await self.store.arun_step(step)
                    result = await self.store.acheck_count(query, params)
                done = outcomes[step.table.name]
                tables.append(TableResult(step.table.name, step.action, done.rows, query, params,
                                          result, done.outdated_parts))  # fmt: skip
            if any(t.result for t in tables):
                unverified = ", ".join(t.table for t in tables if t.result)
                raise StorageError(f"rows remain after deletion in {unverified}", retriable=False)
            folder = self.settings.export_dir / request.district_id
            files = await asyncio.to_thread(
                clear_export_files, self.settings.home, folder, students,
                request_id=request.request_id, at=self.now(),
            )  # fmt: skip
        return tables, files

    def _write_receipt(self, request_id: str, text: str) -> Path:
        folder = self.settings.receipts_dir
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{request_id}.json"
        tmp = path.with_suffix(".json.partial")
        tmp.write_text(text + "\n", encoding="utf-8")
        tmp.replace(path)
        return path

    async def _reenable(self, request: DeletionRequest) -> None:
        """Lift deny-list entries: data dated from now on is accepted (a fresh start)."""
        at = self.now()
        ids = request.students or (WHOLE_DISTRICT,)
        current = [self.deny.get(request.district_id, s) for s in ids]
        missing = sum(1 for e in current if e is None or e.reenabled_at is not None)
        if missing:
            raise PrivacyRequestError(f"{missing} of {len(ids)} named are not deleted")
        entries = [DenyEntry(e.district_id, e.student_id, e.request_id, e.deleted_at, at)
                   for e in current if e is not None]  # fmt: skip
        await self.store.asave_deny(entries, time.time_ns())
        await asyncio.to_thread(self.topics.publish_deny, entries)
        self.deny.update(entries)
        await self.store.aaudit(*(
            AuditEntry(at, request.district_id, request.requester, "deletion.reenabled",
                       self._pseudonym(request.district_id, e.student_id)
                       if e.student_id else request.district_id, request.request_id)
            for e in entries
        ))  # fmt: skip
        await self.publish(status.completed(request.request_id, None, None, self.now()))
