"""The one boundary to ClickHouse: typed methods, one owning thread, errors wrapped once.

A server over HTTP when `ABACUS_CLICKHOUSE__URL` is set, else chDB in-process through the
same client. chDB allows one engine (one data path) per process: in embedded mode only the
worker may open the store while the stack is up. One thread owns the client (neither chDB
nor clickhouse-connect clients are meant to be shared across threads), so calls run in the
order they are made; async callers await the `a…` methods, which run there too. A
retriable failure is tried again with backoff (`RetryPolicy`) before it escapes.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from abacus.aggregation.derive import derive_facts
from abacus.aggregation.pending import PENDING_EVENTS_SQL, event_from_row, pending_marks
from abacus.audit import AuditEntry
from abacus.catalog import (
    AUDIT_LOG,
    DISTRICTS,
    EVENTS,
    EXPORT_AUDIT,
    EXPORT_REQUESTS,
    PENDING_FACTS,
    PRIVACY_DENY,
    PRIVACY_REQUESTS,
    ROSTER_STUDENTS,
    ROSTER_USERS,
)
from abacus.catalog import Table as CatalogTable
from abacus.district import DistrictConfig, decode_stored_config
from abacus.errors import StorageError
from abacus.export.claims import ExportClaim
from abacus.export.manifest import StoreFigures
from abacus.export.query import ExportQuery, export_sql
from abacus.export.request import Requester
from abacus.privacy.deny import DenyEntry
from abacus.privacy.plan import Step
from abacus.settings import AbacusSettings
from abacus.store import migrations
from abacus.store.errors import RetryPolicy, storage_error
from abacus.store.native import EncodedBlock

__all__ = ["Row", "StepOutcome", "Store"]

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")
Row = Sequence[Any]
_PENDING_CHUNK = 50_000
DEFAULT_RETRY = RetryPolicy()
# ALTER TABLE … DELETE/UPDATE waits until every part (and, on a server, every replica) is
# rewritten; lightweight DELETE FROM would leave the bytes on disk until a merge.
_SYNC_MUTATION = {"mutations_sync": 2}


@dataclass(frozen=True)
class StepOutcome:
    """A deletion step as done: rows it matched, what its check counts now (0 = verified),
    and the parts it replaced that ClickHouse has yet to remove from disk."""

    rows: int
    remaining: int
    outdated_parts: int


class Store:
    """ClickHouse for Abacus. Open with `Store.open(settings)`; `close()` when done."""

    def __init__(
        self,
        open_client: Callable[[], Client],
        database: str,
        *,
        retry: RetryPolicy = DEFAULT_RETRY,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.database = database
        self._retry = retry
        self._sleep = sleep
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickhouse")
        self._owner = self._pool.submit(threading.current_thread).result()
        self._client: Client = self._call("cannot open ClickHouse", open_client)

    @classmethod
    def open(cls, settings: AbacusSettings) -> Store:
        """The configured store: a server when a URL is set, else chDB under the home."""
        ch = settings.clickhouse
        if ch.url is None:
            path = settings.chdb_path
            path.mkdir(parents=True, exist_ok=True)
            dsn = f"chdb://{path.resolve()}"
        else:
            dsn = ch.url.get_secret_value()
        return cls(lambda: clickhouse_connect.get_client(dsn=dsn), ch.database)

    def close(self) -> None:
        """Close the client on its thread, then stop the thread."""
        self._call("close failed", self._client.close)
        self._pool.shutdown(wait=True)

    # --- running calls on the owning thread ----------------------------------------------

    def _attempts(self, what: str, fn: Callable[P, T], *args: P.args, **kw: P.kwargs) -> T:
        delays = self._retry.delays()
        for attempt in range(len(delays) + 1):
            try:
                return fn(*args, **kw)
            except ClickHouseError as exc:
                error = storage_error(what, exc)
                if not error.retriable or attempt == len(delays):
                    raise error from exc
                log.warning("%s (attempt %d), retrying: %s", what, attempt + 1, error.name)
                self._sleep(delays[attempt])
        raise AssertionError("unreachable")  # pragma: no cover

    def _call(self, what: str, fn: Callable[P, T], *args: P.args, **kw: P.kwargs) -> T:
        """Run on the owning thread (directly when already on it) and wait."""
        if threading.current_thread() is self._owner:
            return self._attempts(what, fn, *args, **kw)
        return self._pool.submit(self._attempts, what, fn, *args, **kw).result()

    async def _acall(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        """Run on the owning thread without blocking the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._attempts, what, fn, *args)

    def _name(self, table: CatalogTable | str) -> str:
        return f"{self.database}.{table if isinstance(table, str) else table.name}"

    # --- schema ------------------------------------------------------------------------

    def migrate(self) -> list[str]:
        """Create the database and apply every migration not yet applied (idempotent)."""
        return self._call("migration failed", migrations.apply, self._client, self.database)

    def column_types(self, tables: Sequence[str]) -> dict[str, dict[str, str]]:
        """Column name → type of each table, as the store has them (for NativeEncoder)."""
        rows = self._call(
            "reading column types failed",
            self._rows,
            "SELECT table, name, type FROM system.columns "
            "WHERE database = {db:String} AND table IN {tables:Array(String)}",
            {"db": self.database, "tables": list(tables)},
        )
        types: dict[str, dict[str, str]] = {}
        for table, name, type_name in rows:
            types.setdefault(table, {})[name] = type_name
        missing = set(tables) - set(types)
        if missing:
            names = ", ".join(sorted(missing))
            raise StorageError(f"tables missing: {names} (run `abacus init`)", retriable=False)
        return types

    async def acolumn_types(self, tables: Sequence[str]) -> dict[str, dict[str, str]]:
        return await asyncio.get_running_loop().run_in_executor(
            self._pool, self.column_types, tables
        )

    # --- writes ----------------------------------------------------------------------------

    def _insert(self, table: CatalogTable, rows: Sequence[Row]) -> None:
        if rows:
            self._client.insert(self._name(table), rows, column_names=list(table.columns))

    def insert_rows(self, table: CatalogTable, rows: Sequence[Row]) -> None:
        """Insert rows in the catalog's column order of ``table`` as one block."""
        self._call(f"insert into {table.name} failed", self._insert, table, rows)

    async def ainsert_rows(self, table: CatalogTable, rows: Sequence[Row]) -> None:
        await self._acall(f"insert into {table.name} failed", self._insert, table, rows)

    def _insert_block(self, block: EncodedBlock) -> None:
        if block.rows:
            self._client.raw_insert(
                self._name(block.table), list(block.columns), block.data, fmt="Native"
            )

    async def ainsert_blocks(self, blocks: Iterable[EncodedBlock]) -> None:
        """Insert blocks encoded elsewhere (an ingest process), in order: no Python per row."""
        for block in blocks:
            await self._acall(f"insert into {block.table} failed", self._insert_block, block)

    # --- pending facts ---------------------------------------------------------------------

    def _resolve_pending(self, district_id: str, timezone: str) -> int:
        total = 0
        sql = PENDING_EVENTS_SQL.format(db=self.database, limit=_PENDING_CHUNK)
        while rows := self._rows(sql, {"d": district_id}):
            events = [event_from_row(r) for r in rows]
            for table, fact_rows in derive_facts(events, lambda e: timezone).by_table():
                self._insert(table, fact_rows)
            self._insert(PENDING_FACTS, pending_marks(events, resolved=True))
            total += len(events)
            log.info("derived facts for %d pending event(s) of a newly configured district", total)
        return total

    def resolve_pending(self, district_id: str, timezone: str) -> int:
        """Derive and store the facts of every pending event of a now configured district;
        returns how many. Safe to interrupt and run again: facts are idempotent rows and an
        event is marked resolved only after its facts are stored."""
        what = "resolving pending facts failed"
        return self._call(what, self._resolve_pending, district_id, timezone)

    async def aresolve_pending(self, district_id: str, timezone: str) -> int:
        return await self._acall(
            "resolving pending facts failed", self._resolve_pending, district_id, timezone
        )

    # --- reads -----------------------------------------------------------------------------

    def _rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return list(self._client.query(sql, parameters=dict(params or {}) or None).result_rows)

    def read(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Rows of a read query (`abacus sql`); values are bound server-side."""
        return self._call("query failed", self._rows, sql, params)

    def read_format(self, sql: str, params: Mapping[str, Any], fmt: str) -> bytes:
        """A query's whole answer in a ClickHouse output format (e.g. CSVWithNames)."""
        return self._call(
            "query failed", self._client.raw_query, sql, parameters=dict(params), fmt=fmt
        )

    def execute(self, statement: str) -> None:
        """Run a statement that returns nothing (benchmark data, OPTIMIZE)."""
        self._call("statement failed", self._client.command, statement)

    def load_districts(self) -> dict[str, DistrictConfig]:
        """Every district's latest config (at worker start); unreadable ones are skipped."""
        sql = f"SELECT district_id, config_json FROM {self._name(DISTRICTS)} FINAL"  # noqa: S608
        out: dict[str, DistrictConfig] = {}
        for district_id, config_json in self.read(sql):
            config = decode_stored_config(district_id, config_json)
            if config is not None:
                out[district_id] = config
        return out

    # --- exports ---------------------------------------------------------------------------

    def _requester(self, district_id: str, employee_id: str) -> Requester | None:
        rows = self._rows(
            f"SELECT user_type, buildings, email FROM {self._name(ROSTER_USERS)} FINAL "  # noqa: S608
            "WHERE district_id = {d:String} AND employee_id = {e:String} AND is_active = 1",
            {"d": district_id, "e": employee_id},
        )
        if not rows:
            return None
        user_type, buildings, email = rows[0]
        return Requester(employee_id, int(user_type), tuple(buildings), email)

    async def arequester(self, district_id: str, employee_id: str) -> Requester | None:
        """An active staff member of the district, or None."""
        return await self._acall(
            "requester lookup failed", self._requester, district_id, employee_id
        )

    def _stream(self, query: ExportQuery, sink: Callable[[Iterator[Row]], T]) -> T:
        sql = export_sql(self.database)
        with self._client.query_row_block_stream(sql, parameters=query.params()) as blocks:
            return sink(row for block in blocks for row in block)

    def stream_export(self, query: ExportQuery, sink: Callable[[Iterator[Row]], T]) -> T:
        """Run the export query and hand its rows, as they stream in, to ``sink`` (called on
        the store's thread); returns what ``sink`` returns."""
        return self._call("export query failed", self._stream, query, sink)

    async def astream_export(self, query: ExportQuery, sink: Callable[[Iterator[Row]], T]) -> T:
        return await self._acall("export query failed", self._stream, query, sink)

    def _figures(self, district_id: str) -> StoreFigures:
        version = self._rows(
            f"SELECT max(version) FROM {self._name(ROSTER_STUDENTS)} "  # noqa: S608
            "WHERE district_id = {d:String}",
            {"d": district_id},
        )[0][0]
        offsets = self._rows(
            f"SELECT src_partition, max(src_offset) FROM {self._name(EVENTS)} "  # noqa: S608
            "GROUP BY src_partition ORDER BY src_partition"
        )
        return StoreFigures(int(version or 0), {int(p): int(o) + 1 for p, o in offsets})

    async def afigures(self, district_id: str) -> StoreFigures:
        """The roster version and the events offsets the aggregates reflect (manifest)."""
        return await self._acall("reading manifest figures failed", self._figures, district_id)

    def _claim(self, district_id: str, request_id: str) -> ExportClaim | None:
        rows = self._rows(
            f"SELECT requester, payload_sha256 FROM {self._name(EXPORT_REQUESTS)} "  # noqa: S608
            "WHERE district_id = {d:String} AND request_id = {r:String} "
            "ORDER BY requested_at LIMIT 1",
            {"d": district_id, "r": request_id},
        )
        if not rows:
            return None
        requester, digest = rows[0]
        return ExportClaim(district_id, request_id, requester, digest)

    async def aexport_claim(self, district_id: str, request_id: str) -> ExportClaim | None:
        """Who first used ``request_id`` in the district (and for what), or None: a request
        id, its status and its files belong to that requester."""
        return await self._acall("export claim lookup failed", self._claim, district_id, request_id)

    async def aclaim_export(self, claim: ExportClaim, at: datetime) -> None:
        """Record that ``claim.requester`` used the id (before any file is written)."""
        row = [claim.district_id, claim.request_id, claim.requester, claim.digest, at]
        await self._acall("claiming the export id failed", self._insert, EXPORT_REQUESTS, [row])

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
        outdated = self._count(
            "SELECT count() FROM system.parts WHERE database = {db:String} "
            "AND table = {t:String} AND active = 0",
            {"db": db, "t": step.table.name},
        )
        return StepOutcome(rows, remaining, outdated)

    async def arun_step(self, step: Step, passes: int = 3) -> StepOutcome:
        """Count, then remove (or pseudonymise) a step's rows with a synchronous mutation,
        until its check counts 0 or ``passes`` mutations ran."""
        return await self._acall(
            f"deleting from {step.table.name} failed", self._run_step, step, passes
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
            DenyEntry(d, s, r, _utc(at), None if re is None else _utc(re))
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

    # --- the audit trail ---------------------------------------------------------------------

    async def aaudit(self, *entries: AuditEntry) -> None:
        """Append entries to the audit trail."""
        await self.ainsert_rows(AUDIT_LOG, [entry.row() for entry in entries])

    def _audit_rows(self, district_id: str, since: datetime | None, limit: int) -> list[AuditEntry]:
        params: dict[str, Any] = {"d": district_id, "n": limit, "since": since or _EPOCH}
        where = "district_id = {d:String} AND at >= {since:DateTime64(3, 'UTC')}"
        sql = (
            f"SELECT at, district_id, actor, action, target, detail, remote "  # noqa: S608
            f"FROM {self._name(AUDIT_LOG)} WHERE {where}"
        )
        # Downloads are audited in export_audit until the portal moves them onto audit_log
        # (it leaves export_audit as a view of them, which must not be read twice).
        engine = self._rows(
            "SELECT engine FROM system.tables WHERE database = {db:String} AND name = {t:String}",
            {"db": self.database, "t": EXPORT_AUDIT.name},
        )
        if engine and engine[0][0] != "View":
            sql += (
                " UNION ALL SELECT at, district_id, requester, "  # noqa: S608
                "if(action = 'denied', 'download.denied', action), request_id, detail, remote "
                f"FROM {self._name(EXPORT_AUDIT)} WHERE {where}"
            )
        sql = f"SELECT * FROM ({sql}) ORDER BY at DESC LIMIT {{n:UInt32}}"  # noqa: S608
        return [AuditEntry(_utc(r[0]), *r[1:]) for r in self._rows(sql, params)]

    def audit_entries(
        self, district_id: str, *, since: datetime | None = None, limit: int = 1000
    ) -> list[AuditEntry]:
        """A district's audit entries since ``since``, newest first."""
        return self._call(
            "reading the audit log failed", self._audit_rows, district_id, since, limit
        )

    async def aaudit_entries(
        self, district_id: str, *, since: datetime | None = None, limit: int = 1000
    ) -> list[AuditEntry]:
        return await self._acall(
            "reading the audit log failed", self._audit_rows, district_id, since, limit
        )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _utc(at: datetime) -> datetime:
    """ClickHouse DateTime64 values come back naive or zoned; always UTC-aware here."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
