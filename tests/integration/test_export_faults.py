"""Every export request ends `completed` or `failed` on a real worker: a folder that cannot
be written, and a worker that dies in the middle of an export. One worker home for the
module (the crash test restarts it)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition

from abacus.embedded.broker import EmbeddedBroker
from abacus.export import status
from abacus.kafka.export_requests import new_request_id, send_request, wait_status
from consumers.lag import LagReader
from tests.support.stack import Stack, wait_until

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
    topic = stack.topic("export-requests")
    with LagReader(stack.settings.broker) as reader:
        rows = reader.snapshot(stack.settings.app_id, [topic], with_seconds=False)
    [row] = [r for r in rows if r.topic == topic]
    assert row.committed == row.log_end > 0
