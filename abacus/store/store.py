"""The one boundary to ClickHouse: typed methods, a thread per lane, errors wrapped once.

A server over HTTP when `ABACUS_CLICKHOUSE__URL` is set, else chDB in-process through the
same client. chDB allows one engine (one data path) per process: in embedded mode only the
worker may open the store while the stack is up. A client is never shared across threads
(clickhouse-connect's chDB backend serialises calls on one handle, and a query issued while
its stream is open returns nothing): each **lane** is one client and the one thread that
owns it, so a lane's calls run in the order they are made, and lanes run side by side.
Ingest writes (`INGEST`) never wait behind an export's query stream (`EXPORT`); everything
else (roster, web, claims, reads, migrations) runs on `SERVICE`. Measured: two clients on
one chDB path in one process run concurrently (docs/architecture.md). Async callers await
the `a…` methods, which run on their lane. A retriable failure is tried again with
backoff (`RetryPolicy`) before it escapes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, ParamSpec, TypeVar

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from abacus.accounts.account import Account
from abacus.accounts.credentials import Credential
from abacus.aggregation.closing import LateKey, late_rows, local_today
from abacus.aggregation.derive import derive_facts
from abacus.aggregation.pending import PENDING_EVENTS_SQL, event_from_row, pending_marks
from abacus.aggregation.rollups import RollupKeys, rebuild_all
from abacus.audit import AuditEntry
from abacus.catalog import (
    AUDIT_LOG,
    BENCHMARK_FACTS,
    DAILY_FACTS,
    DEAD_LETTERS,
    DISTRICTS,
    EVENTS,
    EXPORT_JOBS,
    EXPORT_REQUESTS,
    LESSON_FACTS,
    PENDING_FACTS,
    PORTAL_CREDENTIALS,
    ROSTER_STUDENTS,
    ROSTER_USERS,
)
from abacus.catalog import Table as CatalogTable
from abacus.district import DistrictConfig, decode_stored_config
from abacus.errors import StorageError
from abacus.export.aggregates import Source
from abacus.export.claims import ExportClaim
from abacus.export.jobs import ExportJobView
from abacus.export.lines import TEACHERS_CHANGED, line_params, lines_sql
from abacus.export.manifest import StoreFigures
from abacus.export.query import ExportQuery, export_sql
from abacus.export.request import Requester
from abacus.settings import AbacusSettings
from abacus.store import migrations, rollups
from abacus.store.deletion import DeletionMethods, StepOutcome, as_utc
from abacus.store.errors import RetryPolicy, storage_error
from abacus.store.lanes import EXPORT, INGEST, ROLLUP, SERVICE, Lanes
from abacus.store.native import EncodedBlock, without_dataframe_libraries
from abacus.store.part_storage import pack_small_parts

__all__ = ["Row", "StepOutcome", "Store"]  # StepOutcome: from abacus.store.deletion

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")
Row = Sequence[Any]
_PENDING_CHUNK = 50_000
DEFAULT_RETRY = RetryPolicy()
# Reads of the teacher names an export may make when a roster import changes them mid-way.
_TEACHER_READS = 3
# The temporary table (per client session) an export's rows are formatted from.
_EXPORT_STAGE = "export_stage"

# Tables the ingest service writes: their inserts take the ingest lane.
_INGEST_TABLES = frozenset(
    t.name
    for t in (EVENTS, DAILY_FACTS, LESSON_FACTS, BENCHMARK_FACTS, PENDING_FACTS, DEAD_LETTERS)
)
# How those inserts run. Every read of these tables already copes with duplicate keys
# (a replay after a crash stores a batch again, in parts of its own: FINAL, or argMax by
# key), and ingest never puts one key twice in a block (events are deduplicated by
# event_id first), so the ReplacingMergeTree pass over each new block (optimize_on_insert)
# finds nothing to replace; one thread parses a block of 20k rows as fast as several and
# spares their hand-offs. Measured on 20k-event batches, merges stopped: 63.5 -> 45.2 ms of
# CPU a batch (docs/architecture.md).
_INGEST_INSERT_SETTINGS = {"optimize_on_insert": 0, "max_threads": 1}


class Store(DeletionMethods):
    """ClickHouse for Abacus. Open with `Store.open(settings)`; `close()` when done.

    ``lanes``: a client and thread per lane (`LANES`); False: one client and thread for
    every call (`ABACUS_CLICKHOUSE__LANES=shared`)."""

    def __init__(
        self,
        open_client: Callable[[], Client],
        database: str,
        *,
        retry: RetryPolicy = DEFAULT_RETRY,
        sleep: Callable[[float], None] = time.sleep,
        lanes: bool = False,
        packed_parts: bool = False,
    ) -> None:
        self.database = database
        # Small parts in one file (abacus/store/part_storage.py): the embedded store only.
        self.packed_parts = packed_parts
        self._retry = retry
        self._sleep = sleep
        self._lanes = Lanes(
            lambda: self._attempts("cannot open ClickHouse", open_client), separate=lanes
        )

    @classmethod
    def open(cls, settings: AbacusSettings) -> Store:
        """The configured store: a server when a URL is set, else chDB under the home.

        Every insert is Python rows or Native bytes, never a DataFrame: without this, the
        first `Client.insert` imports pandas to check (measured in the worker: ~0.5 s of
        its time, the first late-key write of a run, and the module's memory for good)."""
        without_dataframe_libraries()
        ch = settings.clickhouse
        if ch.url is None:
            path = settings.chdb_path
            path.mkdir(parents=True, exist_ok=True)
            dsn = f"chdb://{path.resolve()}"
        else:
            dsn = ch.url.get_secret_value()
        return cls(
            lambda: clickhouse_connect.get_client(dsn=dsn),
            ch.database,
            lanes=ch.lanes == "separate",
            packed_parts=ch.embedded,
        )

    def close(self) -> None:
        """Close each lane's client on its thread, then stop the threads."""
        self._lanes.close(lambda close: self._attempts("close failed", close))

    @property
    def _client(self) -> Client:
        """The client of the lane this runs on (`Lanes.client`)."""
        return self._lanes.client()

    # --- running calls on a lane's thread ------------------------------------------------

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
        """Run on the service lane's thread (directly when already on it) and wait."""
        lane = self._lanes[SERVICE]
        if threading.current_thread() is lane.owner:
            return self._attempts(what, fn, *args, **kw)
        return lane.pool.submit(self._attempts, what, fn, *args, **kw).result()

    async def _acall(self, what: str, fn: Callable[..., T], *args: Any, lane: str = SERVICE) -> T:
        """Run on ``lane``'s thread without blocking the event loop."""
        loop = asyncio.get_running_loop()
        pool = self._lanes[lane].pool
        return await loop.run_in_executor(pool, self._attempts, what, fn, *args)

    def _name(self, table: CatalogTable | str) -> str:
        return f"{self.database}.{table if isinstance(table, str) else table.name}"

    # --- schema ------------------------------------------------------------------------

    def migrate(self) -> list[str]:
        """Create the database and apply every migration not yet applied (idempotent); in
        the embedded store, then store small parts packed (`part_storage`)."""
        applied = self._call(
            "migration failed", lambda: migrations.apply(self._client, self.database)
        )
        if self.packed_parts:
            packed = self._call(
                "setting packed part storage failed",
                lambda: pack_small_parts(self._client, self.database),
            )
            if packed:
                log.info("small parts stored packed in %d table(s)", len(packed))
        return applied

    def _column_types(self, tables: Sequence[str]) -> dict[str, dict[str, str]]:
        rows = self._rows(
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

    def column_types(self, tables: Sequence[str]) -> dict[str, dict[str, str]]:
        """Column name → type of each table, as the store has them (for NativeEncoder)."""
        return self._call("reading column types failed", self._column_types, tables)

    async def acolumn_types(self, tables: Sequence[str]) -> dict[str, dict[str, str]]:
        what = "reading column types failed"
        return await self._acall(what, self._column_types, tables, lane=INGEST)

    # --- writes ----------------------------------------------------------------------------

    def _insert(self, table: CatalogTable, rows: Sequence[Row]) -> None:
        if rows:
            settings = _INGEST_INSERT_SETTINGS if table.name in _INGEST_TABLES else None
            self._client.insert(
                self._name(table), rows, column_names=list(table.columns), settings=settings
            )

    def insert_rows(self, table: CatalogTable, rows: Sequence[Row]) -> None:
        """Insert rows in the catalog's column order of ``table`` as one block."""
        self._call(f"insert into {table.name} failed", self._insert, table, rows)

    async def ainsert_rows(self, table: CatalogTable, rows: Sequence[Row]) -> None:
        """Insert rows (on the ingest lane for the tables ingest writes)."""
        lane = INGEST if table.name in _INGEST_TABLES else SERVICE
        await self._acall(f"insert into {table.name} failed", self._insert, table, rows, lane=lane)

    def load_rows(self, table: str, columns: Sequence[str], rows: Sequence[Row]) -> None:
        """Insert rows into ``columns`` of ``table`` (database-qualified, outside the catalog)
        as one block: the export benchmark's floor table."""
        self._call(
            f"insert into {table} failed", self._client.insert, table, rows, column_names=columns
        )

    def _insert_block(self, block: EncodedBlock) -> None:
        if block.rows:
            self._client.raw_insert(
                self._name(block.table),
                list(block.columns),
                block.data,
                fmt="Native",
                settings=_INGEST_INSERT_SETTINGS,
            )

    async def ainsert_blocks(self, blocks: Iterable[EncodedBlock]) -> None:
        """Insert blocks encoded elsewhere (an ingest process), in order: no Python per row."""
        for block in blocks:
            what = f"insert into {block.table} failed"
            await self._acall(what, self._insert_block, block, lane=INGEST)

    # --- pending facts ---------------------------------------------------------------------

    def _resolve_pending(self, district_id: str, timezone: str, seq: int | None) -> int:
        total = 0
        sql = PENDING_EVENTS_SQL.format(db=self.database, limit=_PENDING_CHUNK)
        while rows := self._rows(sql, {"d": district_id}):
            events = [event_from_row(r) for r in rows]
            facts = derive_facts(events, lambda e: timezone)
            # The rollup keys of late facts before the facts, as ingest writes them
            # (streams/rollups.py); a crash before the marks derives them again.
            today = {district_id: local_today(datetime.now(UTC), timezone)}
            late = list(late_rows(facts.daily, facts.lessons, today))
            if seq is not None and late:
                rollups.write_dirty(self._client, self.database, seq, late)
            for table, fact_rows in facts.by_table():
                self._insert(table, fact_rows)
            self._insert(PENDING_FACTS, pending_marks(events, resolved=True))
            total += len(events)
            log.info("derived facts for %d pending event(s) of a newly configured district", total)
        return total

    def resolve_pending(self, district_id: str, timezone: str, seq: int | None = None) -> int:
        """Derive and store the facts of every pending event of a now configured district
        (with the rollup keys of the late ones under ``seq``, None: none); returns how
        many. Safe to interrupt and run again: facts are idempotent rows, and an event is
        marked resolved only after its facts are stored."""
        what = "resolving pending facts failed"
        return self._call(what, self._resolve_pending, district_id, timezone, seq)

    async def aresolve_pending(
        self, district_id: str, timezone: str, seq: int | None = None
    ) -> int:
        what = "resolving pending facts failed"
        return await self._acall(
            what, self._resolve_pending, district_id, timezone, seq, lane=INGEST
        )

    # --- rollups (abacus.store.rollups) -----------------------------------------------------

    async def arebuild_rollups(self, keys: RollupKeys, *, background: bool = True) -> None:
        """Rebuild the rollups of ``keys`` from the facts (the rollup lane; ``background``:
        at the lowest CPU priority, `rollups.BACKGROUND`)."""
        if keys:
            what = "rebuilding rollups failed"
            await self._acall(what, self._on_client, rollups.rebuild, keys, background,
                              lane=ROLLUP)  # fmt: skip

    async def aclose_rollup_days(
        self, district: str, after: date | None, through: date, *, background: bool = True
    ) -> None:
        """Build the rollups of a district's days (after, through] and mark them closed."""
        what = "closing rollup days failed"
        await self._acall(what, self._on_client, rollups.close, district, after, through,
                          background, lane=ROLLUP)  # fmt: skip

    async def awrite_dirty(self, seq: int, keys: Sequence[LateKey]) -> None:
        """Record a batch's late keys (ingest, before its facts)."""
        what = "writing late rollup keys failed"
        await self._acall(what, self._on_client, rollups.write_dirty, seq, keys, lane=INGEST)

    async def alate_keys(self, after: int, through: int) -> list[LateKey]:
        """The late keys written with sequence numbers in (after, through]."""
        what = "reading late rollup keys failed"
        return await self._acall(what, self._on_client, rollups.late_keys, after, through,
                                 lane=ROLLUP)  # fmt: skip

    async def arollup_mark(self, district: str, mark: str, value: int) -> None:
        what = "writing a rollup mark failed"
        await self._acall(what, self._on_client, rollups.write_mark, district, mark, value,
                          lane=ROLLUP)  # fmt: skip

    async def aprune_dirty(self, through: int) -> None:
        """Drop the late keys up to ``through`` (rebuilt; a small table's mutation)."""
        what = "pruning late rollup keys failed"
        await self._acall(what, self._on_client, rollups.prune_dirty, through, lane=ROLLUP)

    def rollup_marks(self) -> tuple[dict[str, date], int, int]:
        """(district → last closed day, last late sequence rebuilt, last one written)."""
        return self._call("reading rollup marks failed", self._rollup_marks)

    async def arollup_marks(self) -> tuple[dict[str, date], int, int]:
        return await self._acall("reading rollup marks failed", self._rollup_marks, lane=EXPORT)

    def _rollup_marks(self) -> tuple[dict[str, date], int, int]:
        closed = rollups.closed_days(self._client, self.database)
        return (closed, *rollups.dirty_seq(self._client, self.database))

    def _on_client(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(client, database, *args)`` with the client of the lane this runs on."""
        return fn(self._client, self.database, *args)

    def rebuild_all_rollups(self, closed_through: Mapping[str, date] | None = None) -> None:
        """Every rollup from every fact (the export benchmark; a long statement), then the
        districts' days up to ``closed_through`` marked closed."""
        for sql in rebuild_all(self.database):
            self.execute(sql)
        for district, day in (closed_through or {}).items():
            self._call("writing a rollup mark failed", self._on_client, rollups.write_mark,
                       district, rollups.CLOSED, rollups.day_number(day))  # fmt: skip

    # --- reads -----------------------------------------------------------------------------

    def _rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return list(self._client.query(sql, parameters=dict(params or {}) or None).result_rows)

    def read(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Rows of a read query (`abacus sql`); values are bound server-side."""
        return self._call("query failed", self._rows, sql, params)

    def read_format(self, sql: str, params: Mapping[str, Any], fmt: str) -> bytes:
        """A query's whole answer in a ClickHouse output format (e.g. CSVWithNames)."""
        return self._call(
            "query failed", lambda: self._client.raw_query(sql, parameters=dict(params), fmt=fmt)
        )

    def execute(self, statement: str) -> None:
        """Run a statement that returns nothing (benchmark data, OPTIMIZE)."""
        self._call("statement failed", lambda: self._client.command(statement))

    def load_districts(self) -> dict[str, DistrictConfig]:
        """Every district's latest config (at worker start); unreadable ones are skipped."""
        sql = f"SELECT district_id, config_json FROM {self._name(DISTRICTS)} FINAL"  # noqa: S608
        out: dict[str, DistrictConfig] = {}
        for district_id, config_json in self.read(sql):
            config = decode_stored_config(district_id, config_json)
            if config is not None:
                out[district_id] = config
        return out

    # --- restoring the topics of a new broker epoch ------------------------------------------

    def has_rows(self, table: CatalogTable) -> bool:
        """Whether ``table`` holds any row."""
        sql = f"SELECT 1 FROM {self._name(table)} LIMIT 1"  # noqa: S608
        return bool(self.read(sql))

    def latest_rows(self, table: CatalogTable) -> list[dict[str, Any]]:
        """Every row of a ReplacingMergeTree as merged (FINAL), by the catalog's columns."""
        columns = table.columns
        sql = f"SELECT {', '.join(columns)} FROM {self._name(table)} FINAL"  # noqa: S608
        return [dict(zip(columns, row, strict=True)) for row in self.read(sql)]

    def _dead_letters(self, sink: Callable[[Iterator[dict[str, Any]]], T]) -> T:
        columns = DEAD_LETTERS.columns
        sql = (
            f"SELECT {', '.join(columns)} FROM {self._name(DEAD_LETTERS)} FINAL "  # noqa: S608
            "ORDER BY failed_at, epoch, src_partition, src_offset"
        )
        binary = {"key": "bytes", "value": "bytes"}  # the record's bytes as they came
        with self._client.query_row_block_stream(sql, column_formats=binary) as blocks:
            return sink(dict(zip(columns, row, strict=True)) for block in blocks for row in block)

    def stream_dead_letters(self, sink: Callable[[Iterator[dict[str, Any]]], T]) -> T:
        """Hand every stored dead letter, oldest first, to ``sink`` (called on the store's
        thread, as the rows stream in); returns what ``sink`` returns."""
        return self._call("reading dead letters failed", self._dead_letters, sink)

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

    def _stream(
        self,
        query: ExportQuery,
        config: DistrictConfig,
        sink: Callable[[Iterator[str]], T],
        source: Source,
    ) -> T:
        whole = query.scope.kind == "district"
        stage = export_sql(self.database, source, whole_district=whole, ordered=False)
        sql = lines_sql(f"SELECT * FROM {_EXPORT_STAGE}", config.cut_score_table())  # noqa: S608
        names = (
            f"SELECT DISTINCT first_name, last_name FROM {self._name(ROSTER_USERS)} FINAL "  # noqa: S608
            "WHERE district_id = {d:String} AND is_active = 1"
        )
        client = self._client
        for attempt in range(1, _TEACHER_READS + 1):
            # The district's teacher names first: the lines order each cell's by them.
            teachers = self._rows(names, {"d": query.district_id})
            # The export's rows are staged in a temporary table (this client's session
            # only), then formatted from it: a third faster than formatting them as the
            # joins stream out (`abacus bench export`), as both cores format.
            client.command(f"DROP TEMPORARY TABLE IF EXISTS {_EXPORT_STAGE}")
            try:
                client.command(
                    f"CREATE TEMPORARY TABLE {_EXPORT_STAGE} AS {stage}",
                    parameters=query.params(),
                )
                params = line_params(config, teachers)
                with client.query_row_block_stream(sql, parameters=params) as blocks:
                    return sink(line for block in blocks for (line,) in block)
            except ClickHouseError as exc:
                if TEACHERS_CHANGED not in str(exc) or attempt == _TEACHER_READS:
                    raise
                log.info("export: teacher names changed while it ran; reading them again")
            finally:
                with contextlib.suppress(ClickHouseError):  # gone with the session anyway
                    client.command(f"DROP TEMPORARY TABLE IF EXISTS {_EXPORT_STAGE}")
        raise AssertionError("unreachable")  # pragma: no cover

    def stream_export(
        self,
        query: ExportQuery,
        config: DistrictConfig,
        sink: Callable[[Iterator[str]], T],
        source: Source = "rollups",
    ) -> T:
        """Run the export query on ``source`` and hand its finished CSV lines (formatted by
        ClickHouse, `abacus.export.lines`), as they stream in, to ``sink`` (called on the
        store's thread); returns what ``sink`` returns."""
        return self._call("export query failed", self._stream, query, config, sink, source)

    async def astream_export(
        self,
        query: ExportQuery,
        config: DistrictConfig,
        sink: Callable[[Iterator[str]], T],
        source: Source = "rollups",
    ) -> T:
        what = "export query failed"
        return await self._acall(what, self._stream, query, config, sink, source, lane=EXPORT)

    def _figures(self, district_id: str, epoch: str) -> StoreFigures:
        version = self._rows(
            f"SELECT max(version) FROM {self._name(ROSTER_STUDENTS)} "  # noqa: S608
            "WHERE district_id = {d:String}",
            {"d": district_id},
        )[0][0]
        offsets = self._rows(
            f"SELECT src_partition, max(src_offset) FROM {self._name(EVENTS)} "  # noqa: S608
            "WHERE src_epoch = {epoch:String} GROUP BY src_partition ORDER BY src_partition",
            {"epoch": epoch},
        )
        # The late keys written by now (their facts may still be in flight: an export
        # waits for them), then how far the rollups are.
        pending = rollups.pending_seq(self._client, self.database, district_id)
        closed, done, _ = self._rollup_marks()
        return StoreFigures(
            int(version or 0),
            {int(p): int(o) + 1 for p, o in offsets},
            epoch,
            rollups_closed=closed.get(district_id),
            late_pending=pending,
            late_done=done,
        )

    async def afigures(self, district_id: str, broker_epoch: str) -> StoreFigures:
        """The roster version, the events offsets (of that broker epoch) stored, and the
        rollup watermark, read before an export's query (manifest)."""
        what = "reading manifest figures failed"
        return await self._acall(what, self._figures, district_id, broker_epoch, lane=EXPORT)

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

    # --- the portal: accounts, export jobs, the audit trail --------------------------------

    def load_accounts(self) -> tuple[list[Account], dict[tuple[str, str], Credential]]:
        """Every staff member's latest roster record, and every password set in the portal
        (by district and Employee_ID); at worker start."""
        columns = ", ".join(ROSTER_USERS.columns)
        users = self.read(f"SELECT {columns} FROM {self._name(ROSTER_USERS)} FINAL")  # noqa: S608
        creds = self.read(
            "SELECT district_id, employee_id, password_hash, set_at "  # noqa: S608
            f"FROM {self._name(PORTAL_CREDENTIALS)} FINAL"
        )
        portal = {(str(d), str(e)): Credential(str(h), int(t)) for d, e, h, t in creds}
        return [Account.from_row(row) for row in users], portal

    async def aset_portal_credential(
        self, district_id: str, employee_id: str, credential: Credential, at: datetime
    ) -> None:
        """Store a password set in the portal (the newest ``set_at`` wins)."""
        row = [district_id, employee_id, credential.password_hash, credential.set_at, at]
        await self.ainsert_rows(PORTAL_CREDENTIALS, [row])

    def load_export_jobs(self) -> list[ExportJobView]:
        """Every export request's latest status; at worker start."""
        columns = ", ".join(EXPORT_JOBS.columns)
        rows = self.read(f"SELECT {columns} FROM {self._name(EXPORT_JOBS)} FINAL")  # noqa: S608
        return [ExportJobView.from_row(row) for row in rows]

    async def asave_export_job(self, job: ExportJobView) -> None:
        await self.ainsert_rows(EXPORT_JOBS, [job.row()])

    async def aaudit(self, *entries: AuditEntry) -> None:
        """Append entries to the audit trail."""
        await self.ainsert_rows(AUDIT_LOG, [entry.row() for entry in entries])

    def _audit_rows(
        self,
        district_id: str,
        limit: int,
        actions: Sequence[str],
        target: str | None,
        since: datetime | None,
    ) -> list[AuditEntry]:
        where = ["district_id = {d:String}"]
        params: dict[str, Any] = {"d": district_id, "n": limit}
        if since is not None:
            where.append("at >= {since:DateTime64(3, 'UTC')}")
            params["since"] = since
        if actions:
            where.append("action IN {a:Array(String)}")
            params["a"] = list(actions)
        if target is not None:
            where.append("target = {t:String}")
            params["t"] = target
        columns = ", ".join(AUDIT_LOG.columns)
        sql = (
            f"SELECT {columns} FROM {self._name(AUDIT_LOG)} "  # noqa: S608
            f"WHERE {' AND '.join(where)} ORDER BY at DESC LIMIT {{n:UInt32}}"
        )
        return [AuditEntry(as_utc(r[0]), *r[1:]) for r in self._rows(sql, params)]

    def audit_entries(
        self,
        district_id: str,
        *,
        limit: int = 200,
        actions: Sequence[str] = (),
        target: str | None = None,
        since: datetime | None = None,
    ) -> list[AuditEntry]:
        """A district's newest audit entries (optionally of some actions, one target, or
        since a time)."""
        return self._call(
            "reading the audit log failed",
            self._audit_rows, district_id, limit, actions, target, since,
        )  # fmt: skip

    async def aaudit_entries(
        self,
        district_id: str,
        *,
        limit: int = 200,
        actions: Sequence[str] = (),
        target: str | None = None,
        since: datetime | None = None,
    ) -> list[AuditEntry]:
        return await self._acall(
            "reading the audit log failed",
            self._audit_rows, district_id, limit, actions, target, since,
        )  # fmt: skip
