"""Every export request ends `completed` or `failed` with a reason, whatever breaks on the
way: the store mid-stream, the formatting of a row, the file system, the mail, the status
publisher. The flow in memory (fake store, fixed clock), as in test_export_flow.py."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from abacus.district import DistrictConfig
from abacus.errors import StackError, StorageError
from abacus.export import status
from abacus.export.query import ExportQuery
from abacus.export.rows import csv_lines
from abacus.mail import LinkMail
from tests.unit.test_export_flow import DISTRICT, FakeStore, Harness, query_row

T = TypeVar("T")


@pytest.fixture
def rows() -> list[tuple[Any, ...]]:
    return [query_row(student_id=f"S{i}") for i in range(5)]


def leftovers(h: Harness) -> list[str]:
    """Files an export left in the district's folder."""
    folder = h.export_dir / DISTRICT
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


class StreamBreaksStore(FakeStore):
    """The query stream fails after some rows, as a ClickHouse stream does mid-way (the
    store wraps the driver's error once: a StorageError raised inside the sink)."""

    async def astream_export(
        self,
        query: ExportQuery,
        config: DistrictConfig,
        sink: Callable[[Iterator[str]], T],
        source: str = "rollups",
    ) -> T:
        self.queries.append(query)

        def broken() -> Iterator[str]:
            yield from csv_lines(self.rows[:3], config)
            raise StorageError("export query failed: Code: 241", retriable=True, code=241)

        return sink(broken())


async def test_a_store_error_in_the_middle_of_the_stream_fails_and_leaves_no_file(
    tmp_path: Path, rows: list[tuple[Any, ...]]
) -> None:
    h = Harness(tmp_path, StreamBreaksStore(rows))
    assert await h.request() == "failed"
    assert [s["status"] for s in h.statuses] == ["accepted", "progress", "failed"]
    assert h.statuses[-1]["reason"] == status.GENERATION_FAILED
    assert leftovers(h) == []  # not even the half-written .partial
    assert h.mails == []


async def test_a_row_that_cannot_be_formatted_fails_with_a_reason(
    tmp_path: Path, rows: list[tuple[Any, ...]]
) -> None:
    # A row the formatter cannot handle (a bug of ours, or a type the query never gave
    # before): grade None breaks the cells.
    bad = [*rows[:2], query_row(student_id="S9", grade=None, environment=None), *rows[2:]]
    h = Harness(tmp_path, FakeStore(bad))
    assert await h.request() == "failed"
    assert [s["status"] for s in h.statuses] == ["accepted", "progress", "failed"]
    assert h.statuses[-1]["reason"] == status.INTERNAL_FAILURE
    assert leftovers(h) == []


async def test_an_export_folder_that_cannot_be_written_fails_with_a_reason(
    tmp_path: Path, rows: list[tuple[Any, ...]]
) -> None:
    h = Harness(tmp_path, FakeStore(rows))
    h.export_dir.mkdir(parents=True)
    (h.export_dir / DISTRICT).write_text("a file where the district's folder should be")
    assert await h.request() == "failed"
    assert [s["status"] for s in h.statuses] == ["accepted", "progress", "failed"]
    assert h.statuses[-1]["reason"] == status.WRITE_FAILED
    assert h.mails == []


async def test_a_failure_after_the_csv_leaves_neither_file(
    tmp_path: Path, rows: list[tuple[Any, ...]]
) -> None:
    store = FakeStore(rows)

    async def no_figures(district_id: str, broker_epoch: str) -> Any:
        raise StorageError("reading manifest figures failed", retriable=True, code=210)

    store.afigures = no_figures  # type: ignore[method-assign]
    h = Harness(tmp_path, store)
    assert await h.request() == "failed"
    assert h.statuses[-1]["reason"] == status.GENERATION_FAILED
    # No CSV without its manifest: the files appear only when the export completes.
    assert leftovers(h) == []


@pytest.mark.parametrize(
    "error", [RuntimeError("mailer bug"), UnicodeEncodeError("ascii", "é", 0, 1, "no")]
)
async def test_a_mail_that_cannot_be_sent_still_completes_the_export(
    tmp_path: Path, rows: list[tuple[Any, ...]], error: Exception
) -> None:
    h = Harness(tmp_path, FakeStore(rows))

    def broken_mail(mail: LinkMail) -> None:
        raise error

    h.consumer.mail = broken_mail
    assert await h.request() == "completed"
    assert [s["status"] for s in h.statuses] == ["accepted", "progress", "completed"]
    assert leftovers(h) == ["r1.csv", "r1.manifest.json"]


class FlakyPublisher:
    """Fails the first ``failures`` sends of each status kind in ``kinds``."""

    def __init__(self, kinds: set[str], failures: int) -> None:
        self.kinds = kinds
        self.failures = failures
        self.tries: dict[str, int] = {}
        self.sent: list[dict[str, Any]] = []

    async def __call__(self, doc: dict[str, Any]) -> None:
        kind = doc["status"]
        self.tries[kind] = self.tries.get(kind, 0) + 1
        if kind in self.kinds and self.tries[kind] <= self.failures:
            raise StackError("broker unreachable")
        self.sent.append(doc)


def flaky(h: Harness, kinds: set[str], failures: int) -> FlakyPublisher:
    publisher = FlakyPublisher(kinds, failures)
    h.consumer.publish = publisher
    h.consumer.publish_retry_s = (0.0, 0.0, 0.0)
    return publisher


async def test_progress_that_cannot_be_published_does_not_stop_the_export(
    tmp_path: Path, rows: list[tuple[Any, ...]]
) -> None:
    h = Harness(tmp_path, FakeStore(rows))
    publisher = flaky(h, {"accepted", "progress"}, failures=10)
    assert await h.request() == "completed"
    assert [s["status"] for s in publisher.sent] == ["completed"]


async def test_a_final_status_is_published_again_until_the_broker_takes_it(
    tmp_path: Path, rows: list[tuple[Any, ...]]
) -> None:
    h = Harness(tmp_path, FakeStore(rows))
    publisher = flaky(h, {"completed"}, failures=2)
    assert await h.request() == "completed"
    assert [s["status"] for s in publisher.sent] == ["accepted", "progress", "completed"]
    assert publisher.tries["completed"] == 3


async def test_a_final_status_that_cannot_be_published_raises_so_the_request_is_not_acked(
    tmp_path: Path, rows: list[tuple[Any, ...]]
) -> None:
    # The agent does not ack the record; the worker stops and the request is delivered
    # again (it matches its claim and runs again).
    h = Harness(tmp_path, FakeStore(rows, fail=True))
    publisher = flaky(h, {"failed"}, failures=10)
    with pytest.raises(StackError, match="broker unreachable"):
        await h.request()
    assert publisher.tries["failed"] == 4  # the first try and three more


async def test_an_unexpected_error_while_checking_a_request_is_a_failed_status(
    tmp_path: Path, rows: list[tuple[Any, ...]]
) -> None:
    store = FakeStore(rows)

    async def broken(district_id: str, employee_id: str) -> Any:
        raise KeyError("a bug in the lookup")

    store.arequester = broken  # type: ignore[method-assign]
    h = Harness(tmp_path, store)
    assert await h.request() == "failed"
    assert [(s["status"], s["reason"]) for s in h.statuses] == [("failed", status.INTERNAL_FAILURE)]


async def test_a_record_that_is_not_json_is_rejected(tmp_path: Path) -> None:
    h = Harness(tmp_path, FakeStore([]))
    outcome = await h.consumer.handle(b"\xff\xfe not json")
    assert outcome.name == "rejected"
    [failed] = h.statuses
    assert failed["status"] == "failed"
    assert json.dumps(failed)  # a status document even for garbage


# -- the agent's side: a request that keeps killing the worker ------------------------------


def agent(h: Harness, state: Path, limit: int = 2) -> Any:
    from streams.agents.export import ExportRequests
    from streams.attempts import AttemptLog
    from streams.metrics import Metrics

    log = AttemptLog(state / "export-attempts.json", group="abacus", epoch="e1")
    return ExportRequests(h.consumer, Metrics(), log, limit)


def request_record(**fields: Any) -> bytes:
    doc = {"request_id": "r1", "district_id": DISTRICT, "requester": "0401",
           "product": "both", "range": "ytd", **fields}  # fmt: skip
    return json.dumps(doc).encode()


async def test_a_request_that_killed_the_worker_runs_again_then_fails_past_the_limit(
    tmp_path: Path, rows: list[tuple[Any, ...]]
) -> None:
    state = tmp_path / "state"
    # Run 1 and run 2 die in the middle of the export (nothing after `attempt` happens).
    for _ in range(2):
        dying = agent(Harness(tmp_path / "a", FakeStore(rows)), state)
        assert dying.attempts.attempt(0, 7) >= 1
    # Run 3: the third delivery of the same record is past the limit of 2: failed, not run.
    h = Harness(tmp_path / "b", FakeStore(rows))
    handler = agent(h, state)
    outcome = await handler.process(request_record(), 0, 7)
    assert outcome.name == "failed"
    assert h.store.queries == []
    [failed] = h.statuses
    assert failed["status"] == "failed"
    assert failed["reason"] == status.crashed_reason(2)
    metrics = handler.metrics.registry
    assert metrics.get_sample_value("abacus_exports_total", {"outcome": "failed"}) == 1
    # The record is done with: the next one starts counting afresh, and completes.
    assert (await handler.process(request_record(request_id="r2"), 0, 8)).name == "completed"
    assert h.statuses[-1]["status"] == "completed"
    assert json.loads((state / "export-attempts.json").read_text())["partitions"] == {}


async def test_a_request_redelivered_after_one_crash_runs_again_and_completes(
    tmp_path: Path, rows: list[tuple[Any, ...]]
) -> None:
    state = tmp_path / "state"
    h = Harness(tmp_path, FakeStore(rows))
    agent(h, state).attempts.attempt(0, 3)  # a run that died on it
    h.statuses.clear()
    handler = agent(h, state)
    assert (await handler.process(request_record(), 0, 3)).name == "completed"
    assert [s["status"] for s in h.statuses] == ["accepted", "progress", "completed"]
    assert (
        handler.metrics.registry.get_sample_value("abacus_exports_total", {"outcome": "completed"})
        == 1
    )


async def test_a_broker_outage_at_the_final_status_does_not_count_as_a_crash(
    tmp_path: Path, rows: list[tuple[Any, ...]]
) -> None:
    state = tmp_path / "state"
    h = Harness(tmp_path, FakeStore(rows))
    handler = agent(h, state, limit=1)
    flaky(h, {"completed"}, failures=100)
    with pytest.raises(StackError):
        await handler.process(request_record(), 0, 4)
    # After the restart the request runs again (attempt 1 of 1, not 2 > 1: not given up).
    h2 = Harness(tmp_path / "again", FakeStore(rows))
    assert (await agent(h2, state, limit=1).process(request_record(), 0, 4)).name == "completed"


async def test_the_status_hook_hears_only_statuses_the_broker_took(
    tmp_path: Path, rows: list[tuple[Any, ...]]
) -> None:
    # The portal's board follows the published statuses: a lost progress note is not on
    # it, and a final status retried until the broker takes it is on it once.
    h = Harness(tmp_path, FakeStore(rows))
    publisher = flaky(h, {"progress", "completed"}, failures=2)
    assert await h.request() == "completed"
    assert publisher.tries == {"accepted": 1, "progress": 1, "completed": 3}
    assert [s for _, s in h.tracked] == ["accepted", "completed"]


async def test_a_status_hook_that_fails_changes_nothing_about_the_export(
    tmp_path: Path, rows: list[tuple[Any, ...]]
) -> None:
    h = Harness(tmp_path, FakeStore(rows))

    async def broken_hook(request: Any, doc: dict[str, Any]) -> None:
        raise RuntimeError("board bug")

    h.consumer.on_status = broken_hook
    assert await h.request() == "completed"
    assert [s["status"] for s in h.statuses] == ["accepted", "progress", "completed"]
    assert leftovers(h) == ["r1.csv", "r1.manifest.json"]
