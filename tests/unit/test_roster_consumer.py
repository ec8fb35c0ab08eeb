"""The roster consumer's batch in memory (fake store), the OneRoster state's rows and their
restore, and the single-file helpers: keys, the published roster, orphaned buildings."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import ConsumerRecord

from abacus.catalog import (
    DISTRICTS,
    ROSTER_LINKS,
    ROSTER_ONEROSTER_STATE,
    ROSTER_STUDENTS,
    ROSTER_STUDENTS_HISTORY,
    ROSTER_USERS,
    Table,
)
from abacus.district import DistrictConfig
from abacus.errors import StorageError
from abacus.privacy.deny import DenyEntry, DenyList
from abacus.roster import records as rec
from abacus.roster.records import RosterKind
from abacus.roster.restore import restored_state
from abacus.roster.upload import keep, orphaned_buildings, published_ids, upload_of
from abacus.roster.validation import (
    LINKS_FILE,
    STUDENTS_FILE,
    USERS_FILE,
    RosterValidation,
    TeacherStudentLink,
)
from abacus.settings import AbacusSettings
from streams.agents.roster import RosterService
from streams.districts import DistrictRegistry
from streams.health import Readiness
from streams.metrics import Metrics
from streams.portal.accounts import AccountDirectory
from streams.store_retry import StoreRetry

SETTINGS = AbacusSettings(home=Path("/x"))
T = SETTINGS.topics


class FakeStore:
    def __init__(self, fail: bool = False) -> None:
        self.rows: dict[str, list[tuple[Any, ...]]] = {}
        self.fail = fail

    async def ainsert_rows(self, table: Table, rows: Sequence[tuple[Any, ...]]) -> None:
        if self.fail:
            raise StorageError("insert failed", retriable=True)
        self.rows.setdefault(table.name, []).extend(rows)

    def load_districts(self) -> dict[str, DistrictConfig]:
        return {}

    async def aresolve_pending(self, district_id: str, timezone: str, seq: object = None) -> int:
        return 0


def record(topic: str, offset: int, key: bytes, value: bytes | None) -> ConsumerRecord[Any, Any]:
    return ConsumerRecord(topic, 0, offset, 0, 0, key, value, None, len(key), len(value or b""), ())


def student(student_id: str, version: int, grade: str = "3") -> bytes:
    fields = {
        "student_id": student_id, "first_name": "Ann", "last_name": "Bee", "grade": grade,
        "building": "North", "is_ell": False, "is_iep": True,
        **{f"district_data_{n}": "" for n in range(1, 6)},
    }  # fmt: skip
    return rec.encode_value("d1", "imp", version, True, fields)


class Harness:
    """What the consumer sends besides storing: tombstones, and its retry's sleeps."""

    def __init__(self, deny: DenyList) -> None:
        self.deny = deny
        self.readiness = Readiness(topics=True, migrations=True, assignment=True)
        self.tombstones: list[tuple[str, bytes | None]] = []
        self.ready_while_sleeping: list[bool] = []

    async def tombstone(self, topic: str, key: bytes | None) -> None:
        self.tombstones.append((topic, key))


def service(
    store: FakeStore, deny: DenyList | None = None
) -> tuple[RosterService, Metrics, DistrictRegistry]:
    metrics = Metrics()
    districts = DistrictRegistry(store, metrics)  # type: ignore[arg-type]
    accounts = AccountDirectory(store)  # type: ignore[arg-type]
    h = Harness(deny or DenyList())

    async def sleep(seconds: float) -> None:  # the store comes back after two failures
        h.ready_while_sleeping.append(h.readiness.ready)
        if len(h.ready_while_sleeping) >= 2:
            store.fail = False

    def failing(now: bool) -> None:
        h.readiness.roster_store = not now

    retry = StoreRetry("roster batch", metrics.roster_store_failures, failing, sleep=sleep)
    roster = RosterService(
        SETTINGS, store, districts, metrics, accounts, h.deny, h.readiness, h.tombstone,  # type: ignore[arg-type]
        retry=retry,
    )  # fmt: skip
    roster.harness = h  # type: ignore[attr-defined]
    return roster, metrics, districts


def counted(metrics: Metrics, kind: str, outcome: str) -> float | None:
    return metrics.registry.get_sample_value(
        "abacus_roster_records_total", {"kind": kind, "outcome": outcome}
    )


async def test_a_batch_is_stored_per_table_with_every_version_and_bad_records_counted() -> None:
    store = FakeStore()
    roster, metrics, districts = service(store)
    config = DistrictConfig(
        district_id="d1", name="D One", timezone="America/Chicago", school_year_start="08-15"
    )
    bucket = {"file": "users.csv", "buckets": 1, "rows": {"u1": {"role": "student"}}}
    state_value = rec.encode_value("d1", "imp", 7, True, bucket)
    user = rec.encode_value(
        "d1", "imp", 5, True,
        {"employee_id": "T-100|a", "username": "t", "email": None, "first_name": "Tea",
         "last_name": None, "user_type": 1, "buildings": ["North"]},
    )  # fmt: skip
    await roster.handle(
        [
            record(T.name(T.roster_students), 0, b"d1|S1", student("S1", 5)),
            record(T.name(T.roster_students), 1, b"d1|S1", student("S1", 6, grade="4")),
            record(T.name(T.roster_users), 0, b"d1|T-100|a", user),
            record(T.name(T.roster_links), 0, b"d1|T-100|a|S1", b"not json"),
            record(T.name(T.district_config), 0, b"d1", rec.config_value(config, "imp", 5)),
            record(T.name(T.roster_oneroster), 0, b"d1|users.csv|00000", state_value),
            record(T.name(T.roster_oneroster), 1, b"d2|users.csv|00000", state_value),
        ]
    )
    # Both versions of S1 reach the history; the latest wins in the table by its version.
    history = store.rows[ROSTER_STUDENTS_HISTORY.name]
    assert [(r[1], r[4], r[-2]) for r in history] == [("S1", "3", 5), ("S1", "4", 6)]
    assert store.rows[ROSTER_STUDENTS.name] == history
    assert [r[1] for r in store.rows[ROSTER_USERS.name]] == ["T-100|a"]
    # Stored, then in force for the portal (a deactivated user's sessions end with it).
    account = roster.accounts.get("d1", "T-100|a")
    assert account is not None
    assert account.is_active
    assert account.version == 5
    assert ROSTER_LINKS.name not in store.rows
    assert [r[0] for r in store.rows[DISTRICTS.name]] == ["d1"]
    (state,) = store.rows[ROSTER_ONEROSTER_STATE.name]
    assert state[:2] == ("d1", "d1|users.csv|00000")
    assert restored_state(dict(zip(ROSTER_ONEROSTER_STATE.columns, state, strict=True))) == (
        b"d1|users.csv|00000",
        state_value,
    )
    assert districts.zones() == {"d1": "America/Chicago"}
    assert counted(metrics, "students", "stored") == 2
    assert counted(metrics, "links", "skipped") == 1
    assert counted(metrics, "oneroster_state", "stored") == 1
    assert counted(metrics, "oneroster_state", "skipped") == 1  # key of another district


async def test_a_batch_the_store_refuses_is_tried_again_until_stored_then_counted() -> None:
    store = FakeStore(fail=True)
    roster, metrics, _ = service(store)
    h = roster.harness  # type: ignore[attr-defined]
    await roster.handle([record(T.name(T.roster_students), 0, b"d1|S1", student("S1", 5))])
    assert h.ready_while_sleeping == [False, False]  # /readyz 503 while it failed
    assert h.readiness.ready
    assert [r[1] for r in store.rows[ROSTER_STUDENTS.name]] == ["S1"]
    assert counted(metrics, "students", "stored") == 1
    failures = metrics.registry.get_sample_value(
        "abacus_roster_store_failures_total", {"retriable": "true"}
    )
    assert failures == 2


async def test_staff_are_in_force_only_after_their_rows_are_stored() -> None:
    store = FakeStore(fail=True)
    roster, _, _ = service(store)
    seen: list[bool] = []

    async def sleep(seconds: float) -> None:  # while the store refuses: not in force yet
        seen.append(roster.accounts.get("d1", "T1") is None)
        store.fail = False

    roster.retry._sleep = sleep
    user = rec.encode_value(
        "d1", "imp", 5, True,
        {"employee_id": "T1", "username": "t", "email": None, "first_name": "Tea",
         "last_name": None, "user_type": 1, "buildings": ["North"]},
    )  # fmt: skip
    await roster.handle([record(T.name(T.roster_users), 0, b"d1|T1", user)])
    assert seen == [True]
    assert roster.accounts.get("d1", "T1") is not None


async def test_a_denied_student_is_dropped_and_tombstoned_and_tombstones_are_counted() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    deny = DenyList([DenyEntry("d1", "S1", "req-1", at)])
    store = FakeStore()
    roster, metrics, _ = service(store, deny)
    students, links = T.name(T.roster_students), T.name(T.roster_links)
    link = rec.encode_value("d1", "imp", 5, True, {"employee_id": "T1", "student_id": "S1"})
    await roster.handle(
        [
            record(students, 0, b"d1|S1", student("S1", int(at.timestamp() * 1000) + 5)),
            record(students, 1, b"d1|S2", student("S2", int(at.timestamp() * 1000) + 5)),
            record(links, 0, b"d1|T1|S1", link),
            record(students, 2, b"d1|S3", None),
        ]
    )
    assert [r[1] for r in store.rows[ROSTER_STUDENTS.name]] == ["S2"]
    assert ROSTER_LINKS.name not in store.rows  # the link names the deleted student too
    assert roster.harness.tombstones == [(students, b"d1|S1"), (links, b"d1|T1|S1")]  # type: ignore[attr-defined]
    assert counted(metrics, "students", "denied") == 1
    assert counted(metrics, "links", "denied") == 1
    assert counted(metrics, "students", "tombstone") == 1


def test_link_keys_split_with_a_staff_id_holding_the_separator() -> None:
    assert rec.key_parts(RosterKind.LINKS, "d1|T|100|S1") == ("d1", "T|100", "S1")
    assert rec.key_parts(RosterKind.USERS, "d1|T|100") == ("d1", "T|100")
    validation = RosterValidation([], [], [TeacherStudentLink("T|100", "S2", 2)], [])
    upload = upload_of("d1", validation)
    upload.rejected_ids[RosterKind.USERS].add("T|100")
    current = ["d1|T|100|S1", "d1|T|1000|S1", "d1|U|S1"]
    assert keep(RosterKind.LINKS, current, upload, "d1") == {"d1|T|100|S1"}


def test_the_published_roster_and_buildings_no_row_names_any_more() -> None:
    docs = {
        RosterKind.USERS: {
            "d1|A": {"employee_id": "A", "is_active": True, "buildings": ["North", "South"]},
            "d1|B": {"employee_id": "B", "is_active": False, "buildings": ["West"]},
        },
        RosterKind.STUDENTS: {
            "d1|S1": {"student_id": "S1", "is_active": True, "building": "North"},
            "d1|S2": {"student_id": "S2", "is_active": True, "building": "South"},
            "d1|S3": {"student_id": "S3", "is_active": True, "building": "South"},
            "d1|S4": {"student_id": "S4", "is_active": False, "building": "West"},
        },
    }
    known = published_ids(docs)
    assert known.staff == {"A": True, "B": False}
    assert known.students == {"S1": True, "S2": True, "S3": True, "S4": False}
    assert known.buildings == {"North", "South"}
    users_only = RosterValidation(
        [], [], [], [], frozenset({"North"}),
        usable={USERS_FILE: True, STUDENTS_FILE: False, LINKS_FILE: False},
        uploaded=frozenset({USERS_FILE}),
    )  # fmt: skip
    (warning,) = orphaned_buildings(users_only, docs[RosterKind.STUDENTS])
    assert warning.warning
    assert (warning.file, warning.line, warning.column) == (USERS_FILE, 0, "Building_Names")
    assert warning.reason == (
        "warning: 2 published student(s) are in building(s) no row names now (South); they"
        " are kept, but a 2_students.csv naming them will be rejected"
    )
    with_students = RosterValidation(
        [], [], [], [], frozenset({"North"}), usable={USERS_FILE: True},
        uploaded=frozenset({USERS_FILE, STUDENTS_FILE}),
    )  # fmt: skip
    assert orphaned_buildings(with_students, docs[RosterKind.STUDENTS]) == []
