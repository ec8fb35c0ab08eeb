"""The export consumer's whole flow in memory: a fake store and a fixed clock; the CSV,
manifest, link, status documents and mail it produces (the integration tests run it for real)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

from abacus.district import DistrictConfig
from abacus.domain.csvcells import EXPORT_HEADER
from abacus.errors import StorageError
from abacus.export.claims import ExportClaim
from abacus.export.links import verify_link
from abacus.export.manifest import StoreFigures
from abacus.export.query import EXPORT_COLUMNS, ExportQuery, ExportScope
from abacus.export.request import Requester
from abacus.export.rows import csv_lines
from abacus.mail import LinkMail
from abacus.settings import AbacusSettings
from consumers.export import ExportConsumer

T = TypeVar("T")
NOW = datetime(2026, 5, 1, 15, 0, tzinfo=UTC)  # 10:00 in Chicago, a Friday
DISTRICT = "maple"
KEY = "k" * 32
EPOCH = "3f2a9c01b7de"  # the broker epoch the worker reads in
COVERED = date(2026, 4, 30)  # the rollups' last closed day: yesterday, for NOW
WATERMARK = {"closed_through": "2026-04-30", "late_keys_written": 3, "late_keys_rebuilt": 3}
CONFIG = DistrictConfig(
    district_id=DISTRICT, name="Maple", timezone="America/Chicago", school_year_start="08-15"
)


def query_row(**values: Any) -> tuple[Any, ...]:
    """One row of the export query, every aggregate zero unless given."""
    row: dict[str, Any] = {name: 0 for name in EXPORT_COLUMNS}
    row.update(
        student_id="S1", first_name="Ada", last_name="Byron", grade="5", building="Oak",
        is_ell=0, is_iep=1, is_active=1, district_data=["ada1", "A-77", "", "", ""],
        environment="g3plus", ever_g3=1, ever_prek2=0, pre_sum=0.0, post_sum=0.0,
        benchmarks=[], teachers=[("Tom", "Tutor")],
    )  # fmt: skip
    row.update(values)
    return tuple(row[name] for name in EXPORT_COLUMNS)


def read_bytes(path: str | Path) -> bytes:
    return Path(path).read_bytes()


def mode_of(path: str | Path) -> int:
    return Path(path).stat().st_mode & 0o777


class FakeStore:
    """The three reads an export makes, from memory; records what it was asked."""

    def __init__(
        self,
        rows: list[tuple[Any, ...]],
        fail: bool = False,
        fail_lookup: bool = False,
        marks: list[tuple[date | None, int]] | None = None,
    ) -> None:
        self.rows = rows
        self.fail = fail
        self.fail_lookup = fail_lookup
        self.queries: list[ExportQuery] = []
        self.sources: list[str] = []
        # The rollup marks at each read, in turn (the last one stays): the district's last
        # closed day and the last late key rebuilt; 3 late keys were written. By default
        # they cover every export.
        self.marks = list(marks or [(COVERED, 3)])
        self.audited: list[Any] = []
        self.claims: dict[tuple[str, str], ExportClaim] = {}
        self.staff = {"0401": Requester("0401", 3, (), "boss@maple.example")}
        self.staff["0101"] = Requester("0101", 1, ("Oak",), "")
        self.staff["0901"] = Requester("0901", 9, (), "")

    async def arequester(self, district_id: str, employee_id: str) -> Requester | None:
        if self.fail_lookup:
            raise StorageError("requester lookup failed: Code: 210", retriable=True, code=210)
        return self.staff.get(employee_id) if district_id in (DISTRICT, "oak") else None

    async def astream_export(
        self,
        query: ExportQuery,
        config: DistrictConfig,
        sink: Callable[[Iterator[str]], T],
        source: str = "rollups",
    ) -> T:
        self.queries.append(query)
        self.sources.append(source)
        if self.fail:
            raise StorageError("query failed: Code: 241", retriable=True, code=241)
        return sink(csv_lines(self.rows, config))

    async def afigures(self, district_id: str, broker_epoch: str) -> StoreFigures:
        # Offsets as stored in that epoch only (the store filters by src_epoch).
        offsets = {1: 10, 0: 5} if broker_epoch == EPOCH else {}
        closed, done, _ = await self.arollup_marks()
        return StoreFigures(1717, offsets, broker_epoch, closed.get(district_id), 3, done)

    async def arollup_marks(self) -> tuple[dict[str, date], int, int]:
        closed, done = self.marks.pop(0) if len(self.marks) > 1 else self.marks[0]
        return ({DISTRICT: closed} if closed else {}), done, 3

    async def aaudit(self, *entries: Any) -> None:
        self.audited.extend(entries)

    async def aexport_claim(self, district_id: str, request_id: str) -> ExportClaim | None:
        return self.claims.get((district_id, request_id))

    async def aclaim_export(self, claim: ExportClaim, at: datetime) -> None:
        assert (claim.district_id, claim.request_id) not in self.claims, "claimed twice"
        self.claims[claim.district_id, claim.request_id] = claim


class Harness:
    def __init__(self, tmp_path: Path, store: FakeStore, rollup_wait_s: float = 10.0) -> None:
        self.statuses: list[dict[str, Any]] = []
        self.tracked: list[tuple[str | None, str]] = []
        self.mails: list[LinkMail] = []
        settings = AbacusSettings(
            home=tmp_path,
            web={"signing_key": KEY, "public_url": "https://abacus.test"},
            exports={"rollup_wait_s": rollup_wait_s},
        )
        self.store = store

        async def publish(doc: dict[str, Any]) -> None:
            self.statuses.append(doc)

        async def on_status(request: Any, doc: dict[str, Any]) -> None:
            self.tracked.append((request.requester if request else None, doc["status"]))

        self.consumer = ExportConsumer(
            settings, store, {DISTRICT: CONFIG}, publish, mail=self.mails.append, now=lambda: NOW,
            broker_epoch=EPOCH,
            on_status=on_status,
        )  # fmt: skip
        self.export_dir = settings.export_dir
        self.rollups_wanted = 0  # times the consumer asked the rollup service for a pass

        def want_rollups() -> None:
            self.rollups_wanted += 1

        self.consumer.want_rollups = want_rollups

    async def request(self, **fields: Any) -> str:
        doc = {
            "request_id": "r1", "district_id": DISTRICT, "requester": "0401",
            "product": "both", "range": "ytd", **fields,
        }  # fmt: skip
        outcome = await self.consumer.handle(json.dumps(doc).encode())
        return outcome.name


@pytest.fixture
def rows() -> list[tuple[Any, ...]]:
    return [
        query_row(),
        query_row(student_id="S2", first_name="=cmd()", last_name="Zed", grade="K",
                  environment="prek2", ever_g3=0, ever_prek2=1, tokens=7, school_ms=5_400_000),
    ]  # fmt: skip


async def test_a_valid_request_writes_the_csv_manifest_link_statuses_and_mail(
    tmp_path: Path, rows: list[tuple[Any, ...]]
) -> None:
    h = Harness(tmp_path, FakeStore(rows))
    assert await h.request() == "completed"

    assert [s["status"] for s in h.statuses] == ["accepted", "progress", "completed"]
    accepted, done = h.statuses[0], h.statuses[2]
    # YTD in the district's time: school year start to yesterday (today is 2026-05-01).
    assert accepted["range"] == {"start": "2025-08-15", "end": "2026-04-30"}
    assert accepted["scope"] == "district"
    [audit] = h.store.audited
    assert (audit.action, audit.actor, audit.target) == ("export.accepted", "0401", "r1")
    assert audit.detail == "both 2025-08-15..2026-04-30 (district)"
    assert h.store.queries == [
        ExportQuery(DISTRICT, date(2025, 8, 15), date(2026, 4, 30), date(2025, 8, 15), "both",
                    ExportScope("district", "0401", ()))
    ]  # fmt: skip

    raw = read_bytes(done["path"])
    assert done["rows"] == 2
    assert done["bytes"] == len(raw)
    assert done["sha256"] == hashlib.sha256(raw).hexdigest()
    table = list(csv.reader(io.StringIO(raw.decode(), newline="")))
    assert raw.count(b"\r\n") == 3
    assert tuple(table[0]) == EXPORT_HEADER
    ada, zed = (dict(zip(EXPORT_HEADER, r, strict=True)) for r in table[1:])
    assert (ada["First Name"], ada["Username"], ada["alt_student_infomration_number"]) == (
        "Ada", "ada1", "A-77",
    )  # fmt: skip
    assert (ada["is_iep"], ada["learning_environment"], ada["teachers"]) == (
        "True", "Grade 3+", "Tom Tutor",
    )  # fmt: skip
    assert (ada["earned_points"], ada["earned_tokens"]) == ("0", "")
    assert zed["First Name"] == "'=cmd()"  # formula neutralised
    assert (zed["learning_environment"], zed["earned_tokens"], zed["earned_points"]) == (
        "PreK-2", "7", "",
    )  # fmt: skip
    assert (zed["school_time"], zed["total_math_time"]) == ("01:30", "01:30")

    manifest = json.loads(read_bytes(done["manifest"]))
    assert manifest["rows"] == 2
    assert manifest["sha256"] == done["sha256"]
    assert manifest["roster_version"] == 1717
    assert manifest["broker_epoch"] == EPOCH
    assert manifest["events_offsets"] == {"0": 5, "1": 10}
    assert (manifest["aggregates"], manifest["rollup_watermark"]) == ("rollups", WATERMARK)
    assert h.store.sources == ["rollups"]
    assert manifest["generated_at"] == NOW.isoformat()

    path, _, query = done["link"].removeprefix("https://abacus.test").partition("?")
    params = dict(p.split("=", 1) for p in query.split("&"))
    assert path == f"/exports/{DISTRICT}/r1.csv"
    assert verify_link(path, params, key=KEY.encode(), now=int(NOW.timestamp())) == "0401"
    # The link expires, and the files are deleted, after the retention (7 days by default).
    expires = datetime(2026, 5, 8, 15, 0, tzinfo=UTC)
    assert params["expires"] == str(int(expires.timestamp()))
    assert done["expires_at"] == manifest["expires_at"] == expires.isoformat()
    # the mail opens the portal page (sign-in required), not the signed link
    assert h.mails == [
        LinkMail(
            "boss@maple.example", DISTRICT, "r1", "https://abacus.test/portal/exports/r1", 2,
            expires, "PreK-2 and Grade 3+",
        )
    ]  # fmt: skip
    # the portal's hook saw every status with the request it was about
    assert h.tracked == [
        ("0401", "accepted"), ("0401", "progress"), ("0401", "completed"),
    ]  # fmt: skip
    # Every status says whose request it answers; the files are the worker user's only.
    assert {(s["district_id"], s["requester"]) for s in h.statuses} == {(DISTRICT, "0401")}
    assert mode_of(done["path"]) == mode_of(done["manifest"]) == 0o600
    assert mode_of(h.export_dir) == mode_of(h.export_dir / DISTRICT) == 0o700


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"district_id": "elsewhere"}, "unknown district 'elsewhere'"),
        ({"requester": "9999"}, "is not an active user"),
        ({"requester": "0901"}, "unknown User_Type 9"),
        ({"range": "custom", "start": "2026-04-01", "end": "2026-05-01"}, "only previous days"),
        ({"product": "g4"}, "invalid request: product"),
    ],
)
async def test_a_rejected_request_gets_a_failed_status_and_writes_nothing(
    tmp_path: Path, rows: list[tuple[Any, ...]], fields: dict[str, Any], reason: str
) -> None:
    h = Harness(tmp_path, FakeStore(rows))
    assert await h.request(**fields) == "rejected"
    [failed] = h.statuses
    assert failed["status"] == "failed"
    # an unparsable record reaches the hook without a request
    assert h.tracked == [
        (None if "product" in fields else fields.get("requester", "0401"), "failed")
    ]
    assert reason in failed["reason"]
    assert h.store.queries == []
    assert not h.export_dir.exists()
    assert h.mails == []


async def test_a_store_failure_becomes_a_failed_status_without_details(
    tmp_path: Path, rows: list[tuple[Any, ...]]
) -> None:
    h = Harness(tmp_path, FakeStore(rows, fail=True))
    assert await h.request() == "failed"
    assert [s["status"] for s in h.statuses] == ["accepted", "progress", "failed"]
    assert h.statuses[-1]["reason"] == "the export could not be generated"
    assert h.mails == []


async def test_a_store_failure_while_checking_the_request_is_a_failed_status_too(
    tmp_path: Path, rows: list[tuple[Any, ...]]
) -> None:
    h = Harness(tmp_path, FakeStore(rows, fail_lookup=True))
    assert await h.request() == "failed"
    assert [(s["status"], s.get("reason")) for s in h.statuses] == [
        ("failed", "the export could not be generated")
    ]
    assert h.store.queries == []


async def test_a_teacher_is_scoped_to_their_links(
    tmp_path: Path, rows: list[tuple[Any, ...]]
) -> None:
    h = Harness(tmp_path, FakeStore(rows))
    assert await h.request(requester="0101", product="g3plus") == "completed"
    [query] = h.store.queries
    assert query.scope == ExportScope("teacher", "0101", ("Oak",))
    assert query.params()["scope"] == "teacher"
    assert query.product == "g3plus"
    assert h.mails == []  # no e-mail on the roster: nothing to send


async def test_a_request_id_is_claimed_once_and_a_reuse_overwrites_nothing(
    tmp_path: Path, rows: list[tuple[Any, ...]]
) -> None:
    h = Harness(tmp_path, FakeStore(rows))
    assert await h.request() == "completed"
    assert h.store.claims[DISTRICT, "r1"].requester == "0401"
    csv_path = Path(h.statuses[-1]["path"])
    written = read_bytes(csv_path)
    h.statuses.clear()

    # Another staff member, or the same one asking for something else, under the same id.
    for fields in ({"requester": "0101"}, {"product": "g3plus"}):
        assert await h.request(**fields) == "rejected"
    assert [s["status"] for s in h.statuses] == ["failed", "failed"]
    assert [s["requester"] for s in h.statuses] == ["0101", "0401"]
    for failed in h.statuses:
        assert failed["reason"] == (
            "request id 'r1' was already used in this district; "
            "send the request again with a new id"
        )
    assert len(h.store.queries) == 1
    assert read_bytes(csv_path) == written
    # The same id in another district is another request.
    h.consumer.districts = {DISTRICT: CONFIG, "oak": CONFIG}
    assert await h.request(district_id="oak") == "completed"
    assert h.store.claims["oak", "r1"].requester == "0401"
    assert read_bytes(csv_path) == written


async def test_a_redelivered_request_runs_again_after_a_crash(
    tmp_path: Path, rows: list[tuple[Any, ...]]
) -> None:
    h = Harness(tmp_path, FakeStore(rows))
    # A worker claimed r1 and died before writing anything or committing the offset.
    doc = {"request_id": "r1", "district_id": DISTRICT, "requester": "0401",
           "product": "both", "range": "ytd"}  # fmt: skip
    from abacus.export.claims import claim_of
    from abacus.export.request import parse_request

    h.store.claims[DISTRICT, "r1"] = claim_of(parse_request(json.dumps(doc).encode()))
    assert await h.request() == "completed"
    assert [s["status"] for s in h.statuses] == ["accepted", "progress", "completed"]
    assert read_bytes(h.statuses[-1]["path"]).startswith(b"First Name,")
    # ...and once more (it crashed again after finishing): the same export, again.
    assert await h.request() == "completed"
    assert len(h.store.queries) == 2


async def test_a_store_failure_while_claiming_is_a_failed_status(
    tmp_path: Path, rows: list[tuple[Any, ...]]
) -> None:
    store = FakeStore(rows)

    async def broken(claim: ExportClaim, at: datetime) -> None:
        raise StorageError("insert into export_requests failed", retriable=True, code=210)

    store.aclaim_export = broken  # type: ignore[method-assign]
    h = Harness(tmp_path, store)
    assert await h.request() == "failed"
    assert [(s["status"], s.get("reason")) for s in h.statuses] == [
        ("failed", "the export could not be generated")
    ]
    assert store.queries == []


async def test_an_export_waits_for_the_rollup_service_to_rebuild_late_keys(
    tmp_path: Path, rows: list[tuple[Any, ...]]
) -> None:
    # Late keys up to 3 written before the export; the rollup service has rebuilt up to 2.
    store = FakeStore(rows, marks=[(COVERED, 2), (COVERED, 2), (COVERED, 3)])
    h = Harness(tmp_path, store)
    assert await h.request() == "completed"
    assert store.sources == ["rollups"]
    # It asked the rollup service for a pass each time it found them behind (twice).
    assert h.rollups_wanted == 2
    manifest = json.loads(read_bytes(h.statuses[-1]["manifest"]))
    assert manifest["aggregates"] == "rollups"
    assert manifest["rollup_watermark"] == WATERMARK
    assert manifest["events_offsets"] == {"0": 5, "1": 10}


@pytest.mark.parametrize(
    ("marks", "closed"),
    [
        ([(None, 3)], None),  # the district's days never closed (no rollups yet)
        ([(date(2000, 1, 1), 3)], "2000-01-01"),  # closed, but not up to the range's end
        ([(COVERED, 2)], COVERED.isoformat()),  # a late key never rebuilt
    ],
)
async def test_an_export_reads_the_facts_when_the_rollups_stay_behind(
    tmp_path: Path,
    rows: list[tuple[Any, ...]],
    marks: list[tuple[date | None, int]],
    closed: str | None,
) -> None:
    store = FakeStore(rows, marks=marks)
    h = Harness(tmp_path, store, rollup_wait_s=0.2)
    assert await h.request() == "completed"
    assert store.sources == ["facts"]
    manifest = json.loads(read_bytes(h.statuses[-1]["manifest"]))
    assert manifest["aggregates"] == "facts"
    assert manifest["rollup_watermark"]["closed_through"] == closed
    assert manifest["rows"] == 2
