"""The Store's deletion methods: deletion steps as synchronous mutations, the deny-list,
deletion requests and receipts (a part of `Store`, kept apart for size).

`Store` (abacus/store/store.py) inherits these; they run on its owning thread like every
other call and use its client, error wrapping and retry.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from abacus.catalog import (
    DEAD_LETTERS,
    EVENTS,
    PRIVACY_DENY,
    PRIVACY_REQUESTS,
    ROSTER_ONEROSTER_STATE,
    ROSTER_STUDENTS_HISTORY,
)
from abacus.catalog import Table as CatalogTable
from abacus.errors import StorageError
from abacus.privacy.deny import DenyEntry
from abacus.privacy.plan import ONEROSTER_STATE_ROW, Step
from abacus.store.lanes import EXPORT

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

__all__ = ["DeletionMethods", "StepOutcome"]

P = ParamSpec("P")
T = TypeVar("T")
Row = Sequence[Any]
# ALTER TABLE … DELETE/UPDATE waits until every part (and, on a server, every replica) is
# rewritten; lightweight DELETE FROM would leave the bytes on disk until a merge.
_SYNC_MUTATION = {"mutations_sync": 2}
_ASYNC_MUTATION = {"mutations_sync": 0}  # waited for through system.mutations


@dataclass(frozen=True)
class StepOutcome:
    """A deletion step as done: rows it matched, what its check counts now (0 = verified),
    (-1: not counted yet), and the parts it replaced that ClickHouse has yet to remove
    from disk."""

    rows: int
    remaining: int
    outdated_parts: int


class DeletionMethods:
    """Mixed into `Store`; relies on its client, its owning thread and its inserts."""

    database: str
    _client: Client

    if TYPE_CHECKING:

        def _call(self, what: str, fn: Callable[P, T], *args: P.args, **kw: P.kwargs) -> T: ...

        async def _acall(
            self, what: str, fn: Callable[..., T], *args: Any, lane: str = ...
        ) -> T: ...

        def _rows(
            self, sql: str, params: Mapping[str, Any] | None = None
        ) -> list[tuple[Any, ...]]: ...

        def _name(self, table: CatalogTable | str) -> str: ...

        def read(
            self, sql: str, params: Mapping[str, Any] | None = None
        ) -> list[tuple[Any, ...]]: ...

        async def ainsert_rows(self, table: CatalogTable, rows: Sequence[Row]) -> None: ...

    # --- privacy: deletion steps, the deny-list, requests and receipts ---------------------

    def _count(self, sql: str, params: Mapping[str, Any]) -> int:
        return int(self._rows(sql, params)[0][0])

    def _run_step(self, step: Step, passes: int) -> StepOutcome:
        db, params = self.database, step.parameters
        rows = self._count(step.count_sql(db), params)
        if rows:
            self._client.command(step.mutation_sql(db), parameters=params, settings=_SYNC_MUTATION)
        remaining = self._count(step.check_sql(db), params)
        for _ in range(passes - 1):
            if remaining == 0:
                break
            # A row the first pass missed (a write racing the deletion) or one the check
            # sees another way (an orphan of a deleted event) goes with the check's predicate.
            statement = step.mutation_sql(db, predicate=step.check)
            self._client.command(statement, parameters=params, settings=_SYNC_MUTATION)
            remaining = self._count(step.check_sql(db), params)
        return StepOutcome(rows, remaining, self._outdated_parts(step.table.name))

    def _outdated_parts(self, table: str) -> int:
        return self._count(
            "SELECT count() FROM system.parts WHERE database = {db:String} "
            "AND table = {t:String} AND active = 0",
            {"db": self.database, "t": table},
        )

    def _run_steps(self, steps: Sequence[Step]) -> list[StepOutcome]:
        db = self.database
        rows = [self._count(step.count_sql(db), step.parameters) for step in steps]
        # A step reached through an events link reads `events` in its predicate: it runs to
        # its end first. The others then run at once: ClickHouse rewrites the parts of
        # several tables in parallel, where one after the other they would add up.
        first = [s for s, n in zip(steps, rows, strict=True) if n and s.table.student_link]
        rest = [s for s, n in zip(steps, rows, strict=True) if n and not s.table.student_link]
        for step in first:
            self._client.command(step.mutation_sql(db), parameters=step.parameters,
                                 settings=_SYNC_MUTATION)  # fmt: skip
        for step in rest:
            self._client.command(step.mutation_sql(db), parameters=step.parameters,
                                 settings=_ASYNC_MUTATION)  # fmt: skip
        self._wait_for_mutations({step.table.name for step in rest})
        # Not checked here: the caller verifies every step once all have run (a link's
        # check reads `events`), with a second pass where rows remain (`arun_step`).
        # remaining = -1: not counted yet.
        return [
            StepOutcome(count, -1, self._outdated_parts(step.table.name))
            for step, count in zip(steps, rows, strict=True)
        ]

    def _wait_for_mutations(self, tables: set[str], limit_s: float = 3600.0) -> None:
        """Until no mutation of these tables is left to do; StorageError when one fails."""
        delay, deadline = 0.05, time.monotonic() + limit_s
        while tables:
            pending = self._rows(
                "SELECT table, latest_fail_reason FROM system.mutations "
                "WHERE database = {db:String} AND table IN {t:Array(String)} AND is_done = 0",
                {"db": self.database, "t": sorted(tables)},
            )
            if not pending:
                return
            failed = [(table, reason) for table, reason in pending if reason]
            if failed:
                table, reason = failed[0]
                raise StorageError(f"mutation on {table} failed: {reason}", retriable=False)
            if time.monotonic() > deadline:
                raise StorageError(f"mutations on {sorted(tables)} still running", retriable=True)
            time.sleep(delay)
            delay = min(0.5, delay * 2)

    async def arun_steps(self, steps: Sequence[Step]) -> list[StepOutcome]:
        """A deletion's steps: count each, then remove (or pseudonymise) with mutations that
        run in parallel, and wait for all; the caller checks each (``remaining`` is -1) and
        runs `arun_step` again where rows remain."""
        names = ", ".join(sorted({s.table.name for s in steps}))
        # On the export lane (no export runs meanwhile: the worker's exports lock), so a long
        # rewrite holds up neither ingest nor the roster and portal's service lane.
        what = f"deleting from {names} failed"
        return await self._acall(what, self._run_steps, steps, lane=EXPORT)

    async def arun_step(self, step: Step, passes: int = 3) -> StepOutcome:
        """Count, then remove (or pseudonymise) a step's rows with a synchronous mutation,
        until its check counts 0 or ``passes`` mutations ran."""
        what = f"deleting from {step.table.name} failed"
        return await self._acall(what, self._run_step, step, passes, lane=EXPORT)

    def _dead_letter_positions(
        self, match: Callable[[bytes | None, bytes | None], bool]
    ) -> list[tuple[str, str, int, int]]:
        key = ", ".join(("epoch", "src_topic", "src_partition", "src_offset"))
        sql = f"SELECT {key}, key, value FROM {self._name(DEAD_LETTERS)}"  # noqa: S608
        binary = {"key": "bytes", "value": "bytes"}  # the record's bytes as they came
        found = set()
        with self._client.query_row_block_stream(sql, column_formats=binary) as blocks:
            for block in blocks:
                for epoch, topic, partition, offset, record_key, value in block:
                    if match(record_key or None, value):
                        found.add((str(epoch), str(topic), int(partition), int(offset)))
        return sorted(found)

    async def adead_letter_positions(
        self, match: Callable[[bytes | None, bytes | None], bool]
    ) -> list[tuple[str, str, int, int]]:
        """Positions of the stored dead letters ``match`` picks (called on the store's
        thread for each, with its key and value bytes): they have no district column."""
        return await self._acall("reading dead letters failed", self._dead_letter_positions, match)

    def _district_students(self, district_id: str) -> set[str]:
        rows = self._rows(
            f"SELECT DISTINCT student_id FROM {self._name(ROSTER_STUDENTS_HISTORY)} "  # noqa: S608
            "WHERE district_id = {d:String} UNION DISTINCT "
            f"SELECT DISTINCT student_id FROM {self._name(EVENTS)} "
            "WHERE district_id = {d:String}",
            {"d": district_id},
        )
        return {str(r[0]) for r in rows}

    async def adistrict_students(self, district_id: str) -> set[str]:
        """Every student id the district ever had (roster history and events)."""
        return await self._acall(
            "reading the district's students failed", self._district_students, district_id
        )

    def _oneroster_state_rows(self, district_id: str) -> list[tuple[str, int, int, str]]:
        named = ", ".join(ONEROSTER_STATE_ROW)
        rows = self._rows(
            f"SELECT {named}, doc FROM {self._name(ROSTER_ONEROSTER_STATE)} "  # noqa: S608
            "WHERE district_id = {d:String}",
            {"d": district_id},
        )
        return [(str(k), int(v), int(h), str(doc)) for k, v, h, doc in rows]

    async def aoneroster_state_rows(self, district_id: str) -> list[tuple[str, int, int, str]]:
        """Every stored version (all parts, no FINAL) of the district's OneRoster state
        buckets: key, version, hash of the document (`ONEROSTER_STATE_ROW`) and document."""
        return await self._acall(
            "reading the OneRoster state failed", self._oneroster_state_rows, district_id
        )

    def check_count(self, query: str, params: Mapping[str, Any]) -> int:
        """A receipt's verification query, run again (`abacus privacy verify`)."""
        return self._call("verification query failed", self._count, query, params)

    async def acheck_count(self, query: str, params: Mapping[str, Any]) -> int:
        return await self._acall("verification query failed", self._count, query, params)

    def load_deny(self) -> list[DenyEntry]:
        """The deny-list as stored (latest entry per student), at worker start."""
        rows = self.read(
            "SELECT district_id, student_id, request_id, deleted_at, reenabled_at "  # noqa: S608
            f"FROM {self._name(PRIVACY_DENY)} FINAL"
        )
        return [
            DenyEntry(d, s, r, as_utc(at), None if re is None else as_utc(re))
            for d, s, r, at, re in rows
        ]

    async def asave_deny(self, entries: Sequence[DenyEntry], version: int) -> None:
        await self.ainsert_rows(PRIVACY_DENY, [e.row(version) for e in entries])

    async def asave_privacy_request(self, row: Row) -> None:
        """A request's row (catalog columns of `privacy_requests`), a new version of it."""
        await self.ainsert_rows(PRIVACY_REQUESTS, [row])

    def _privacy_request(self, request_id: str) -> tuple[Any, ...] | None:
        columns = ", ".join(PRIVACY_REQUESTS.columns)
        rows = self._rows(
            f"SELECT {columns} FROM {self._name(PRIVACY_REQUESTS)} FINAL "  # noqa: S608
            "WHERE request_id = {r:String} LIMIT 1",
            {"r": request_id},
        )
        return tuple(rows[0]) if rows else None

    async def aprivacy_request(self, request_id: str) -> tuple[Any, ...] | None:
        """The latest row of a deletion request (catalog columns), in any district, or None."""
        return await self._acall("reading the request failed", self._privacy_request, request_id)

    def _receipt(self, request_id: str) -> str | None:
        rows = self._rows(
            f"SELECT receipt FROM {self._name(PRIVACY_REQUESTS)} FINAL "  # noqa: S608
            "WHERE request_id = {r:String} AND receipt != '' LIMIT 1",
            {"r": request_id},
        )
        return str(rows[0][0]) if rows else None

    def privacy_receipt(self, request_id: str) -> str | None:
        """A completed request's signed receipt (JSON text), or None."""
        return self._call("reading the receipt failed", self._receipt, request_id)

    async def aprivacy_receipt(self, request_id: str) -> str | None:
        return await self._acall("reading the receipt failed", self._receipt, request_id)


def as_utc(at: datetime) -> datetime:
    """ClickHouse DateTime64 values come back naive or zoned; always UTC-aware here."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
