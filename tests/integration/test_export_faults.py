"""The agents' faults on a real worker: every export request ends `completed` or `failed`
(a folder that cannot be written, a worker that dies in the middle of an export), and a
roster batch the store refuses waits and is stored once the store is back. One worker
home for the module (the crash test, last, restarts it)."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition

from abacus.embedded.broker import EmbeddedBroker
from abacus.export import status
from abacus.kafka.export_requests import new_request_id, send_request, wait_status
from consumers.lag import LagReader
from tests.support.stack import Stack, http_get, wait_until

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "district"
DISTRICT = "maple-valley"
CRASH_ID = "exp-dies-mid-way"


@pytest.fixture(scope="module")
def stack(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(broker.bootstrap, tmp_path_factory.mktemp("export-faults"))
    s.start_worker()
    s.run("roster", "import", str(EXAMPLES), "--district", DISTRICT)
    wait_until(lambda: s.metric_sum("abacus_roster_records_total") >= 49, 60, "roster consumed")
    yield s
    s.close()


def ask(stack: Stack, request_id: str, requester: str = "0401") -> None:
    send_request(
        stack.settings,
        {"request_id": request_id, "district_id": DISTRICT, "requester": requester,
         "product": "both", "range": "ytd"},
    )  # fmt: skip


def statuses(stack: Stack, request_id: str) -> list[dict[str, Any]]:
    """Every status document of one request so far, oldest first."""
    consumer = KafkaConsumer(bootstrap_servers=stack.bootstrap, enable_auto_commit=False)
    tp = TopicPartition(stack.topic("export-status"), 0)
    consumer.assign([tp])
    consumer.seek(tp, 0)
    end = consumer.end_offsets([tp])[tp]
    out: list[dict[str, Any]] = []
    while consumer.position(tp) < end:
        for records in consumer.poll(timeout_ms=500).values():
            out += [json.loads(r.value) for r in records if r.key == request_id.encode()]
    consumer.close()
    return out


def test_an_export_folder_that_cannot_be_written_ends_failed_and_is_counted(
    stack: Stack,
) -> None:
    before = stack.metrics()["abacus_exports_total{outcome=failed}"]
    folder = stack.settings.export_dir / DISTRICT
    folder.parent.mkdir(parents=True, exist_ok=True)
    if folder.is_dir():
        folder.rename(folder.with_name("moved-away"))
    folder.write_text("a file where the district's export folder should be")
    rid = new_request_id()
    ask(stack, rid)
    done = wait_status(stack.settings, rid, 60)
    assert (done["status"], done["reason"]) == ("failed", status.WRITE_FAILED)
    assert [s["status"] for s in statuses(stack, rid)] == ["accepted", "progress", "failed"]
    wait_until(
        lambda: stack.metrics()["abacus_exports_total{outcome=failed}"] == before + 1,
        10,
        'abacus_exports_total{outcome="failed"} counting it',
    )
    # The agent lives on: with the folder back, the next request completes.
    folder.unlink()
    rid = new_request_id()
    ask(stack, rid)
    assert wait_status(stack.settings, rid, 60)["status"] == "completed"


def table_dir(stack: Stack, table: str) -> Path:
    """Where chDB keeps a table's parts (an Atomic database names it by the table's UUID)."""
    chdb = stack.settings.chdb_path
    attach = (chdb / "metadata" / "abacus" / f"{table}.sql").read_text()
    match = re.search(r"UUID '([0-9a-f-]{36})'", attach)
    assert match is not None, attach
    uuid = match.group(1)
    return chdb / "store" / uuid[:3] / uuid


def test_a_roster_batch_the_store_refuses_waits_until_it_is_stored(
    stack: Stack, tmp_path: Path
) -> None:
    roster = tmp_path / "district"
    shutil.copytree(EXAMPLES, roster)
    with (roster / "2_students.csv").open("a") as fh:
        fh.write("29999,03/04/2015,Newcomb,Ada,5,Oak Elementary,F,N,Not Hispanic/Latino,"
                 "White,N,anewcomb,MV29999,,,,\n")  # fmt: skip
    stored = "abacus_roster_records_total{kind=students,outcome=stored}"
    before = stack.metrics()[stored]
    # A disk fault: the table's data directory is not a directory any more.
    parts = table_dir(stack, "roster_students")
    parts.rename(parts.with_name(parts.name + ".away"))
    parts.write_text("not a directory")
    try:
        stack.run("roster", "import", str(roster), "--district", DISTRICT)
        wait_until(
            lambda: stack.metrics()["abacus_roster_store_failures_total{retriable=false}"] >= 2,
            60,
            "the refused batch to be tried again",
        )
        status, body = http_get(f"{stack.url}/readyz")
        assert status == 503
        assert json.loads(body)["checks"]["roster_store"] is False
        assert stack.metrics()[stored] == before  # nothing counted as stored, nothing acked
    finally:
        parts.unlink()
        parts.with_name(parts.name + ".away").rename(parts)
    wait_until(
        lambda: stack.metrics()[stored] > before, 90, "the batch stored once the store is back"
    )
    wait_until(lambda: http_get(f"{stack.url}/readyz")[0] == 200, 30, "/readyz 200 again")
    assert "NOT STORED" in (stack.home / "worker.log").read_text()


def test_a_worker_that_dies_mid_export_runs_the_request_again_after_its_restart(
    stack: Stack,
) -> None:
    stack.stop_worker()
    stack.extra_env["ABACUS_TEST_CRASH_ON_KEY"] = CRASH_ID
    stack.start_worker()
    ask(stack, CRASH_ID)
    assert stack.worker is not None
    assert stack.worker.wait(timeout=60) == 70  # died right after publishing `progress`
    stack.worker = None
    assert [s["status"] for s in statuses(stack, CRASH_ID)] == ["accepted", "progress"]

    del stack.extra_env["ABACUS_TEST_CRASH_ON_KEY"]
    stack.start_worker()
    done = wait_status(stack.settings, CRASH_ID, 60)
    assert done["status"] == "completed"
    assert Path(done["path"]).read_bytes().startswith(b"First Name,")
    assert [s["status"] for s in statuses(stack, CRASH_ID)] == [
        "accepted", "progress", "accepted", "progress", "completed",
    ]  # fmt: skip

    # Acked once its final status was out: the agents' group commits every request (a
    # clean restart would otherwise run finished exports again).
    assert stack.stop_worker() == 0
    # The roster batch the store refused (test above) is stored: the new student is there.
    assert stack.query(
        "SELECT first_name FROM abacus.roster_students FINAL WHERE student_id = '29999'"
    ) == [["Ada"]]
    topic = stack.topic("export-requests")
    with LagReader(stack.settings.broker) as reader:
        rows = reader.snapshot(stack.settings.app_id, [topic], with_seconds=False)
    [row] = [r for r in rows if r.topic == topic]
    assert row.committed == row.log_end > 0
