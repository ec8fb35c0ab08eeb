"""The privacy consumer's whole flow in memory: a fake store and topics, a fixed clock; the
order of the steps, statuses, receipt, audit entries and export files it produces (the
integration tests run it against the real broker and ClickHouse)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from abacus.domain.csvcells import EXPORT_HEADER, write_rows
from abacus.errors import StorageError
from abacus.export.request import Requester
from abacus.privacy.deny import DenyEntry, DenyList
from abacus.privacy.plan import Step
from abacus.privacy.receipt import TopicResult, check_signature
from abacus.settings import AbacusSettings
from abacus.store.store import StepOutcome
from consumers.privacy import PrivacyConsumer

NOW = datetime(2026, 5, 1, 15, 0, tzinfo=UTC)
DISTRICT = "maple"
KEY = "k" * 32


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


class FakeStore:
    """Records every call in order; a step removes 5 rows unless told otherwise."""

    database = "abacus"

    def __init__(self, *, fail_on: str | None = None, remaining: int = 0) -> None:
        self.calls: list[str] = []
        self.requests: list[Sequence[Any]] = []
        self.deny_rows: list[DenyEntry] = []
        self.audited: list[Any] = []
        self.fail_on = fail_on
        self.remaining = remaining
        self.staff = {"0501": Requester("0501", 4, (), ""), "0401": Requester("0401", 3, (), "")}

    async def arequester(self, district_id: str, employee_id: str) -> Requester | None:
        return self.staff.get(employee_id) if district_id == DISTRICT else None

    async def asave_privacy_request(self, row: Sequence[Any]) -> None:
        self.calls.append(f"request:{row[7]}")
        self.requests.append(row)

    async def aprivacy_request(self, request_id: str) -> tuple[Any, ...] | None:
        rows = [r for r in self.requests if r[1] == request_id]
        return tuple(rows[-1]) if rows else None

    async def asave_deny(self, entries: Sequence[DenyEntry], version: int) -> None:
        self.calls.append("deny")
        self.deny_rows += entries

    async def arun_step(self, step: Step, passes: int = 3) -> StepOutcome:
        self.calls.append(f"step:{step.table.name}")
        if step.table.name == self.fail_on:
            raise StorageError("deleting failed: Code: 241", retriable=True, code=241)
        return StepOutcome(5, 0, 1)

    async def arun_steps(self, steps: Sequence[Step]) -> list[StepOutcome]:
        return [await self.arun_step(step) for step in steps]

    async def acheck_count(self, query: str, params: dict[str, str]) -> int:
        return self.remaining if "events" in query else 0

    async def aaudit(self, *entries: Any) -> None:
        self.audited += entries

    async def adead_letter_positions(self, match: Any) -> list[tuple[str, str, int, int]]:
        letters = {("e1", "events", 0, 1): (b"S1", b"\x00garbage"),
                   ("e1", "events", 0, 2): (b"S9", b"\x00garbage"),
                   ("e1", "events", 0, 3): (b"S3", b"\x00garbage")}  # fmt: skip
        self.dead_letters = [p for p, (key, value) in letters.items() if match(key, value)]
        return self.dead_letters

    async def adistrict_students(self, district_id: str) -> set[str]:
        return {"S3"}

    async def aoneroster_state_rows(self, district_id: str) -> list[tuple[str, int, int, str]]:
        return []


class FakeTopics:
    def __init__(self, calls: list[str]) -> None:
        self.calls = calls
        self.cleared: list[tuple[str, Collection[str] | None]] = []

    def publish_deny(self, entries: Sequence[DenyEntry]) -> None:
        self.calls.append("deny-topic")

    def clear_roster_keys(
        self, district_id: str, students: Collection[str] | None
    ) -> list[TopicResult]:
        self.calls.append("topics")
        self.cleared.append((district_id, students))
        return [TopicResult("roster-students", 0 if students is None else len(students))]


class Harness:
    def __init__(self, tmp_path: Path, store: FakeStore) -> None:
        self.settings = AbacusSettings(home=tmp_path, web={"signing_key": KEY})
        self.store = store
        self.topics = FakeTopics(store.calls)
        self.deny = DenyList()
        self.statuses: list[dict[str, Any]] = []
        self.forgotten: list[str] = []

        async def publish(doc: dict[str, Any]) -> None:
            self.statuses.append(doc)

        async def barrier() -> None:
            store.calls.append("barrier")

        self.consumer = PrivacyConsumer(
            self.settings, store, self.deny, self.topics, publish, barrier=barrier,
            forget_district=self.forgotten.append, exports_lock=asyncio.Lock(),
            version="9.9.9", now=lambda: NOW,
        )  # fmt: skip

    async def send(self, **fields: Any) -> str:
        doc = {
            "request_id": "del-1", "district_id": DISTRICT, "requester": "0501",
            "kind": "students", "students": ["S1", "S2"], **fields,
        }  # fmt: skip
        return (await self.consumer.handle(json.dumps(doc).encode())).name

    def export(self, name: str, ids: list[str]) -> Path:
        folder = self.settings.export_dir / DISTRICT
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.csv"
        rows = [["A", "B", "u", sid] + ["x"] * (len(EXPORT_HEADER) - 4) for sid in ids]
        with path.open("w", newline="") as fh:
            write_rows(rows, fh, header=EXPORT_HEADER)
        manifest = {"rows": len(ids), "sha256": "old"}
        path.with_suffix(".manifest.json").write_text(json.dumps(manifest))
        return path


async def test_a_deletion_denies_first_then_deletes_verifies_and_signs_a_receipt(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path, FakeStore())
    mixed = h.export("exp-a", ["S1", "S3"])
    only_them = h.export("exp-b", ["S2"])
    untouched = h.export("exp-c", ["S3"])
    assert await h.send() == "completed"

    calls = h.store.calls
    steps = [c for c in calls if c.startswith("step:")]
    assert calls[:4] == ["request:accepted", "deny", "deny-topic", "barrier"]
    assert calls.index("barrier") < calls.index(steps[0]) < calls.index("topics")
    assert calls[-1] == "request:completed"
    assert h.deny.denies(DISTRICT, "S1", NOW)
    assert h.topics.cleared == [(DISTRICT, {"S1", "S2"})]

    assert [s["status"] for s in h.statuses] == ["accepted", "completed"]
    receipt = h.statuses[-1]["receipt"]
    check_signature(receipt, KEY.encode())
    assert receipt["request"]["students"] == ["S1", "S2"]
    assert receipt["software"]["version"] == "9.9.9"
    assert {t["table"] for t in receipt["tables"]} >= {"events", "daily_facts", "audit_log"}
    assert h.store.dead_letters == [("e1", "events", 0, 1)]
    dead = next(t for t in receipt["tables"] if t["table"] == "dead_letters")
    assert "('e1', 'events', 0, 1)" in dead["query"]
    assert all(t["result"] == 0 for t in receipt["tables"])
    assert receipt["rows_removed"] == 5 * len(receipt["tables"])
    files = {f["path"]: f for f in receipt["export_files"]}
    assert files[f"exports/{DISTRICT}/exp-a.csv"]["action"] == "regenerated"
    assert files[f"exports/{DISTRICT}/exp-b.csv"]["action"] == "deleted"
    assert f"exports/{DISTRICT}/exp-c.csv" not in files
    assert mixed.is_file()
    assert not only_them.exists()
    assert not only_them.with_suffix(".manifest.json").exists()
    assert untouched.is_file()
    assert read_json(mixed.with_suffix(".manifest.json"))["rows"] == 1
    assert any(r["bound"] for r in receipt["not_removed"])
    # Beyond the request itself the receipt names no student.
    body = dict(receipt, request=None)
    assert "S1" not in json.dumps(body)
    assert "S2" not in json.dumps(body)

    assert read_json(Path(h.statuses[-1]["receipt_path"])) == receipt
    assert h.store.requests[-1][10] == json.dumps(receipt, indent=2, sort_keys=True)
    assert [a.action for a in h.store.audited] == ["deletion.requested", "deletion.completed"]
    assert all("S1" not in (a.target + a.detail) for a in h.store.audited)
    pseudonyms = h.store.requests[0][6]
    assert len(pseudonyms) == 2
    assert all(p.startswith("ps-") for p in pseudonyms)


@pytest.mark.parametrize("requester", ["0401", "9999"])
async def test_only_a_district_admin_may_delete(tmp_path: Path, requester: str) -> None:
    h = Harness(tmp_path, FakeStore())
    assert await h.send(requester=requester) == "rejected"
    assert h.store.calls == []
    assert [s["status"] for s in h.statuses] == ["failed"]
    [entry] = h.store.audited
    assert entry.action == "deletion.failed"


async def test_a_store_failure_fails_the_request_and_leaves_the_students_denied(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path, FakeStore(fail_on="daily_facts"))
    assert await h.send() == "failed"
    assert h.statuses[-1]["status"] == "failed"
    assert "send it again" in h.statuses[-1]["reason"]
    assert "Code" not in h.statuses[-1]["reason"]
    assert h.deny.denies(DISTRICT, "S2", NOW)
    assert "topics" not in h.store.calls


async def test_rows_left_after_the_deletion_fail_it(tmp_path: Path) -> None:
    h = Harness(tmp_path, FakeStore(remaining=1))
    assert await h.send() == "failed"
    assert not list(h.settings.receipts_dir.glob("*.json"))


async def test_a_district_deletion_reaches_everything_of_the_district(tmp_path: Path) -> None:
    h = Harness(tmp_path, FakeStore())
    h.export("exp-a", ["S1"])
    assert await h.send(kind="district", students=[]) == "completed"
    steps = {c.removeprefix("step:") for c in h.store.calls if c.startswith("step:")}
    assert {"districts", "roster_users", "events", "audit_log"} <= steps
    # The portal's tables: its passwords and export list go with the district.
    assert {"portal_credentials", "export_jobs", "export_requests"} <= steps
    assert h.forgotten == [DISTRICT]
    # Undecodable dead letters keyed by one of the district's students go too.
    assert h.store.dead_letters == [("e1", "events", 0, 3)]
    assert h.topics.cleared == [(DISTRICT, None)]
    assert not (h.settings.export_dir / DISTRICT).exists()
    assert h.deny.district_denied(DISTRICT, NOW)


async def test_a_reenable_lets_data_from_now_on_in(tmp_path: Path) -> None:
    h = Harness(tmp_path, FakeStore())
    assert await h.send(kind="reenable", students=["S1"]) == "rejected"
    assert "1 of 1 named are not deleted" in h.statuses[-1]["reason"]
    h.deny.update([DenyEntry(DISTRICT, "S1", "del-0", datetime(2026, 1, 1, tzinfo=UTC))])
    assert await h.send(request_id="del-2", kind="reenable", students=["S1"]) == "completed"
    entry = h.deny.get(DISTRICT, "S1")
    assert entry is not None
    assert entry.reenabled_at == NOW
    assert not h.deny.denies(DISTRICT, "S1", NOW)
    assert h.deny.denies(DISTRICT, "S1", datetime(2026, 4, 1, tzinfo=UTC))
    [audit] = [a for a in h.store.audited if a.action == "deletion.reenabled"]
    assert audit.target.startswith("ps-")
    assert h.statuses[-1]["status"] == "completed"


async def test_a_request_id_is_used_once_and_a_redelivery_keeps_its_receipt(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path, FakeStore())
    assert await h.send() == "completed"
    first = h.statuses[-1]["receipt"]
    steps = len([c for c in h.store.calls if c.startswith("step:")])
    assert await h.send() == "completed"  # the same record again: nothing runs twice
    assert h.statuses[-1]["receipt"] == first
    assert len([c for c in h.store.calls if c.startswith("step:")]) == steps
    assert await h.send(students=["S9"]) == "rejected"
    assert "already used" in h.statuses[-1]["reason"]


async def test_a_failed_district_deletion_finishes_when_sent_again_under_its_id(
    tmp_path: Path,
) -> None:
    store = FakeStore(fail_on="roster_links")
    h = Harness(tmp_path, store)
    assert await h.send(kind="district", students=[]) == "failed"
    assert store.requests[-1][7] == "failed"
    # The district's admin is gone from the roster by now: the request was checked once.
    store.staff.clear()
    store.fail_on = None
    assert await h.send(kind="district", students=[]) == "completed"
    assert h.statuses[-1]["receipt"]["verified"] is True
