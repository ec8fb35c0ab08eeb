"""The store boundary with a fake driver client: errors wrapped once with the server's code,
retriable ones retried with backoff, every call on the one thread that owns the client."""

from __future__ import annotations

import asyncio
import threading
from datetime import date
from types import SimpleNamespace
from typing import Any

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from abacus.aggregation.rollups import RollupKeys
from abacus.catalog import AUDIT_LOG, DAILY_FACTS, DEAD_LETTERS, EVENTS, ROSTER_LINKS
from abacus.district import DistrictConfig
from abacus.errors import AbacusError, StorageError
from abacus.export.lines import TEACHERS_CHANGED
from abacus.export.query import ExportQuery, ExportScope
from abacus.store.errors import RetryPolicy, storage_error
from abacus.store.native import EncodedBlock
from abacus.store.rollups import BACKGROUND
from abacus.store.store import Store


class FakeClient:
    """Fails the first ``failures`` calls of each kind with ``error``, then answers."""

    def __init__(self, error: Exception | None = None, failures: int = 0) -> None:
        self.error = error
        self.failures = failures
        self.threads: set[str] = set()
        self.inserts: list[tuple[str, list[Any], list[str]]] = []
        self.commands: list[str] = []
        self.settings: list[Any] = []  # each command's query settings
        self.insert_settings: dict[str, Any] = {}  # each table's last insert's settings

    def _maybe_fail(self) -> None:
        self.threads.add(threading.current_thread().name)
        if self.failures > 0 and self.error is not None:
            self.failures -= 1
            raise self.error

    def insert(
        self, table: str, rows: list[Any], column_names: list[str], settings: Any = None
    ) -> None:
        self._maybe_fail()
        self.inserts.append((table, rows, column_names))
        self.insert_settings[table] = settings

    def raw_insert(
        self, table: str, column_names: list[str], data: bytes, fmt: str, settings: Any = None
    ) -> None:
        self._maybe_fail()
        self.inserts.append((table, [data], column_names))
        self.insert_settings[table] = settings

    def close(self) -> None:
        self.threads.add(threading.current_thread().name)

    def command(self, sql: str, parameters: Any = None, settings: Any = None) -> None:
        self.threads.add(threading.current_thread().name)
        self.commands.append(sql.split(" AS ")[0])
        self.settings.append(settings)


DAY = date(2026, 1, 5)
EXPORT_QUERY = ExportQuery("d", DAY, DAY, DAY, "both", ExportScope("district", "e", ()))
EXPORT_CONFIG = DistrictConfig(name="D", timezone="UTC", school_year_start="08-01")


def store_with(client: FakeClient, sleeps: list[float]) -> Store:
    return Store(lambda: client, "db", retry=RetryPolicy(attempts=4), sleep=sleeps.append)  # type: ignore[arg-type,return-value]


def server_error(code: int, name: str) -> DatabaseError:
    return DatabaseError(f"Code: {code}. DB::Exception: boom. ({name})", code=code, name=name)


def test_a_transient_failure_is_retried_with_backoff_and_succeeds() -> None:
    client, sleeps = FakeClient(OperationalError("connection reset"), failures=2), []
    store = store_with(client, sleeps)
    store.insert_rows(AUDIT_LOG, [["row"]])
    assert sleeps == [0.2, 0.4]
    assert client.inserts == [("db.audit_log", [["row"]], list(AUDIT_LOG.columns))]
    store.close()
    assert len(client.threads) == 1  # opened, used and closed on one thread
    assert client.threads != {threading.current_thread().name}


def test_ingest_inserts_skip_the_insert_time_replacing_pass_and_nothing_else_does() -> None:
    """Ingest's tables are read with duplicates in mind (FINAL, argMax), so their inserts
    skip the ReplacingMergeTree pass over each block; a roster table's insert keeps it."""
    client, sleeps = FakeClient(), []
    store = store_with(client, sleeps)
    store.insert_rows(DEAD_LETTERS, [["row"]])
    store.insert_rows(EVENTS, [["row"]])
    block = EncodedBlock(DAILY_FACTS.name, ("district_id",), b"native", 1)
    asyncio.run(store.ainsert_blocks([block]))
    store.insert_rows(ROSTER_LINKS, [["row"]])
    store.close()
    for table in (DEAD_LETTERS, EVENTS, DAILY_FACTS):
        assert client.insert_settings[f"db.{table.name}"]["optimize_on_insert"] == 0
    assert client.insert_settings["db.roster_links"] is None


def test_a_schema_error_is_not_retried_and_keeps_the_servers_code() -> None:
    client, sleeps = FakeClient(server_error(60, "UNKNOWN_TABLE"), failures=1), []
    store = store_with(client, sleeps)
    with pytest.raises(StorageError) as caught:
        store.insert_rows(AUDIT_LOG, [["row"]])
    assert (caught.value.retriable, caught.value.code, caught.value.name) == (
        False, 60, "UNKNOWN_TABLE",
    )  # fmt: skip
    assert "insert into audit_log failed" in str(caught.value)
    assert isinstance(caught.value.__cause__, DatabaseError)
    assert sleeps == []
    store.close()


def test_retries_are_bounded() -> None:
    client, sleeps = FakeClient(server_error(252, "TOO_MANY_PARTS"), failures=10), []
    store = store_with(client, sleeps)
    with pytest.raises(StorageError) as caught:
        store.insert_rows(AUDIT_LOG, [["row"]])
    assert caught.value.retriable is True
    assert caught.value.code == 252
    assert sleeps == [0.2, 0.4, 0.8]  # four attempts
    assert client.failures == 6
    store.close()


async def test_async_callers_get_the_same_boundary() -> None:
    client, sleeps = FakeClient(OperationalError("timeout"), failures=1), []
    store = store_with(client, sleeps)
    await store.ainsert_rows(AUDIT_LOG, [["a"], ["b"]])
    assert len(client.inserts) == 1
    assert sleeps == [0.2]
    store.close()


def test_storage_errors_classify_driver_errors() -> None:
    assert storage_error("x", OperationalError("reset")).retriable is True
    assert storage_error("x", server_error(241, "MEMORY_LIMIT_EXCEEDED")).retriable is True
    assert storage_error("x", server_error(62, "SYNTAX_ERROR")).retriable is False
    assert issubclass(StorageError, AbacusError)
    assert RetryPolicy(attempts=6, first_delay_s=0.5, max_delay_s=3).delays() == [
        0.5, 1.0, 2.0, 3.0, 3.0,
    ]  # fmt: skip


class RestoreClient(FakeClient):
    """Answers the reads `streams.restore` makes: a roster table and the dead letters."""

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        super().__init__()
        self.rows = rows
        self.queries: list[tuple[str, dict[str, str] | None]] = []

    def query(self, sql: str, parameters: Any = None) -> Any:
        self.queries.append((sql, None))
        return type("Result", (), {"result_rows": self.rows})()

    def query_row_block_stream(self, sql: str, column_formats: dict[str, str]) -> Any:
        self.queries.append((sql, column_formats))
        blocks = [self.rows[:1], self.rows[1:]]

        class Stream:
            def __enter__(self) -> list[list[tuple[Any, ...]]]:
                return blocks

            def __exit__(self, *exc: object) -> None:
                return None

        return Stream()


def test_restore_reads_rows_by_catalog_columns_and_dead_letters_as_bytes() -> None:
    letter = ("ep1", "events", 0, 7, b"S1", b"\xff\x00raw", "undecodable: x", "2026-01-01")
    client = RestoreClient([letter, (*letter[:3], 8, *letter[4:])])
    store = store_with(client, [])
    assert store.has_rows(DEAD_LETTERS)
    letters = store.stream_dead_letters(list)
    assert [d["src_offset"] for d in letters] == [7, 8]
    assert letters[0]["value"] == b"\xff\x00raw"
    assert set(letters[0]) == set(DEAD_LETTERS.columns)
    sql, formats = client.queries[-1]
    assert formats == {"key": "bytes", "value": "bytes"}, "the record's bytes, not text"
    assert "db.dead_letters FINAL" in sql
    assert "ORDER BY failed_at" in sql
    links = RestoreClient([("D1", "T-1", "S1", 1, "imp", 5, "2026-01-01")])
    store.close()
    store = store_with(links, [])
    rows = store.latest_rows(ROSTER_LINKS)
    assert rows == [dict(zip(ROSTER_LINKS.columns, links.rows[0], strict=True))]
    assert links.queries[0][0].endswith("FROM db.roster_links FINAL")
    store.close()


# -- lanes: ingest never waits behind an export's query stream ------------------------------


class LaneClient(FakeClient):
    """A client whose query stream blocks until ``release`` is set."""

    def __init__(self, release: threading.Event) -> None:
        super().__init__()
        self.release = release

    def query_row_block_stream(self, sql: str, parameters: Any = None) -> Any:
        self.threads.add(threading.current_thread().name)
        release = self.release

        class Stream:
            def __enter__(self) -> Any:
                release.wait(10)
                return [[("row",)]]

            def __exit__(self, *exc: object) -> None:
                return None

        return Stream()

    def query(self, sql: str, parameters: Any = None) -> Any:
        # The district's teacher names, read before the export's query: none here.
        return SimpleNamespace(result_rows=[])


def lane_store(lanes: bool) -> tuple[Store, list[LaneClient], threading.Event]:
    release = threading.Event()
    clients: list[LaneClient] = []

    def open_client() -> LaneClient:
        clients.append(LaneClient(release))
        return clients[-1]

    store = Store(open_client, "db", lanes=lanes)  # type: ignore[arg-type]
    return store, clients, release


@pytest.mark.parametrize("lanes", [True, False])
async def test_an_ingest_insert_does_not_wait_for_an_export_stream(lanes: bool) -> None:
    import asyncio

    from abacus.store.native import EncodedBlock

    store, clients, release = lane_store(lanes)
    export = asyncio.ensure_future(store.astream_export(EXPORT_QUERY, EXPORT_CONFIG, list))
    await asyncio.sleep(0.1)  # the stream is open and waits for `release`
    block = EncodedBlock("events", ("event_id",), b"\x00", 1)
    insert = asyncio.ensure_future(store.ainsert_blocks([block]))
    done, _ = await asyncio.wait([insert], timeout=1.0)
    inserted_while_streaming = insert in done
    release.set()
    await asyncio.gather(export, insert)
    await store.ainsert_rows(DEAD_LETTERS, [["letter"]])
    await store.ainsert_rows(AUDIT_LOG, [["audit"]])
    store.close()
    if not lanes:  # one client and thread for everything: the insert waited (before lanes)
        assert not inserted_while_streaming
        assert len(clients) == 1
        return
    assert inserted_while_streaming
    # A client per lane, each used on its own thread only.
    service, ingest, export_client, rollup = clients
    assert [t for t, _, _ in ingest.inserts] == ["db.events", "db.dead_letters"]
    assert [t for t, _, _ in service.inserts] == ["db.audit_log"]
    assert export_client.inserts == []
    assert rollup.inserts == []
    threads = [c.threads for c in clients]
    assert all(len(t) == 1 for t in threads)
    assert [next(iter(t)).split("_")[0] for t in threads] == [
        "clickhouse-service", "clickhouse-ingest", "clickhouse-export", "clickhouse-rollup",
    ]  # fmt: skip


class TeacherNamesClient(FakeClient):
    """An export's reads: the district's teacher names, then its lines; the first
    ``changes`` queries fail as a teacher name the names lacked makes them fail."""

    def __init__(self, changes: int) -> None:
        super().__init__()
        self.changes = changes
        self.name_reads: list[Any] = []

    def query(self, sql: str, parameters: Any = None) -> Any:
        self.name_reads.append(parameters)
        return SimpleNamespace(result_rows=[("Ada", "Byron")])

    def query_row_block_stream(self, sql: str, parameters: Any = None) -> Any:
        assert parameters["teacher_cells"] == ["Ada Byron"]
        if self.changes > 0:
            self.changes -= 1
            raise DatabaseError(f"Code: 395. DB::Exception: {TEACHERS_CHANGED}: while", code=395)

        class Stream:
            def __enter__(self) -> Any:
                return [[("a\r\n",), ("b\r\n",)]]

            def __exit__(self, *exc: object) -> None:
                return None

        return Stream()


@pytest.mark.parametrize(("changes", "reads"), [(0, 1), (2, 3)])
def test_an_export_reads_the_teacher_names_again_when_they_changed(
    changes: int, reads: int
) -> None:
    client = TeacherNamesClient(changes)
    store = store_with(client, [])
    lines = store.stream_export(EXPORT_QUERY, EXPORT_CONFIG, list)
    store.close()
    assert lines == ["a\r\n", "b\r\n"]
    assert client.name_reads == [{"d": "d"}] * reads
    # The rows staged anew each time, and the stage dropped after each try.
    stage = [
        "DROP TEMPORARY TABLE IF EXISTS export_stage",
        "CREATE TEMPORARY TABLE export_stage",
        "DROP TEMPORARY TABLE IF EXISTS export_stage",
    ]
    assert client.commands == stage * reads


def test_an_export_whose_teacher_names_keep_changing_fails() -> None:
    store = store_with(TeacherNamesClient(changes=3), [])
    with pytest.raises(StorageError, match=TEACHERS_CHANGED):
        store.stream_export(EXPORT_QUERY, EXPORT_CONFIG, list)
    store.close()


@pytest.mark.parametrize("background", [True, False])
async def test_a_rollup_rebuild_runs_at_background_priority_unless_an_export_waits(
    background: bool,
) -> None:
    client = FakeClient()
    store = store_with(client, [])
    keys = RollupKeys()
    keys.add_day("d", "s1", DAY)
    keys.add_lesson("d", "s1", "L1", DAY)
    await store.arebuild_rollups(keys, background=background)
    await store.aclose_rollup_days("d", None, DAY, background=background)
    # Lessons, days, months for the keys, then for the closed days: each statement at
    # nice 19, or (an export waits for it) with the query's defaults.
    rebuilds = [c for c in client.commands if c.startswith("INSERT")]
    assert len(rebuilds) == 6
    assert BACKGROUND == {"os_thread_priority": 19}
    assert client.settings[: len(rebuilds)] == [BACKGROUND if background else {}] * 6
