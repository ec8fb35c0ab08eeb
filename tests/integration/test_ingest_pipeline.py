"""The first real path: events topic → ingest service → ClickHouse, bad records → dead letters.

The scenarios that need no fresh worker share one (`shared`); the others start their own."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import pytest

from abacus.embedded.broker import EmbeddedBroker
from abacus.events.codec import AVRO_MAGIC, encode_batch, encode_event, encode_json
from schemas import EVENT_TYPES
from tests.support.events import one_of_each, sample_event
from tests.support.produce import produce_records, read_dead_letters
from tests.support.stack import Stack, child_processes, wait_until


def _stored_events(stack: Stack) -> dict[str, dict[str, object]]:
    rows = stack.query(
        "SELECT toString(event_id), event_type, district_id, student_id, product, "
        "toUnixTimestamp64Milli(occurred_at), payload FROM abacus.events FINAL"
    )
    return {
        r[0]: {
            "event_type": r[1],
            "district_id": r[2],
            "student_id": r[3],
            "product": r[4],
            "occurred_at_ms": r[5],
            "payload": json.loads(r[6]),
        }
        for r in rows
    }


def _expected_row(event: dict[str, object]) -> dict[str, object]:
    common = ("event_id", "event_type", "occurred_at", "district_id", "student_id", "product")
    payload = {
        k: int(v.timestamp() * 1000) if isinstance(v, datetime) else v
        for k, v in event.items()
        if k not in common
    }
    occurred = event["occurred_at"]
    assert isinstance(occurred, datetime)
    return {
        "event_type": event["event_type"],
        "district_id": event["district_id"],
        "student_id": event["student_id"],
        "product": event["product"],
        "occurred_at_ms": int(occurred.timestamp() * 1000),
        "payload": payload,
    }


@pytest.mark.parametrize("processes", ["0", "2"], ids=["in-worker", "two-ingest-processes"])
def test_every_event_type_round_trips_through_avro_json_and_batches(
    stack: Stack, processes: str
) -> None:
    stack.extra_env["ABACUS_INGEST_PROCESSES"] = processes
    avro = one_of_each(student_id="S1001")
    as_json = one_of_each(student_id="S1002")
    batched = one_of_each(student_id="S1003")
    records = [(b"S1001", encode_event(e)) for e in avro]
    records += [(b"S1002", encode_json(e)) for e in as_json]
    records.append((b"S1003", encode_batch(batched)))
    stack.start_worker()
    produce_records(stack, records)
    total = len(avro) + len(as_json) + len(batched)
    wait_until(
        lambda: stack.metric_sum("abacus_events_accepted_total") >= total,
        60,
        f"{total} accepted events",
    )
    metrics = stack.metrics()
    for event_type in EVENT_TYPES:
        assert metrics[f"abacus_events_accepted_total{{event_type={event_type}}}"] == 3
    assert stack.stop_worker() == 0

    stored = _stored_events(stack)
    assert len(stored) == total
    for event in avro + as_json + batched:
        assert stored[str(event["event_id"])] == _expected_row(event)


# --- three scenarios on one worker (they use different students and never interfere) -----

GOOD = [sample_event("points_earned", student_id="S2001", points=i + 1) for i in range(4)]
_MISSING = json.loads(encode_json(sample_event("quiz_submitted", student_id="S2001")))
del _MISSING["score_percent"]
BAD = {
    "undecodable": b"\x00\x01garbage\xff",
    "fingerprint": AVRO_MAGIC + b"\x01\x02\x03\x04\x05\x06\x07\x08" + b"\x00\x02",
    "missing_field: field score_percent": json.dumps(_MISSING).encode(),
    "score_percent outside 0-100": encode_event(
        sample_event("quiz_submitted", student_id="S2001", score_percent=150.0)
    ),
}
BATCHED = [sample_event("problem_attempted", student_id="S3001") for _ in range(7)]
BAD_IN_BATCH = sample_event("quiz_submitted", student_id="S3001", score_percent=101.0)
TWICE = sample_event("token_earned", student_id="S4001", tokens=2)


@dataclass
class SharedRun:
    """What one worker made of the three scenarios: offsets of the bad records, the dead
    letters, the metrics once everything was seen, and every stored event."""

    stack: Stack
    bad_offsets: list[int]
    letters: list[dict[str, object]]
    metrics: dict[str, float]
    stored: dict[str, dict[str, object]]

    def letters_of(self, student: bytes) -> list[dict[str, object]]:
        return [letter for letter in self.letters if letter["key"] == student]

    def stored_of(self, student: str) -> set[str]:
        return {eid for eid, row in self.stored.items() if row["student_id"] == student}


@pytest.fixture(scope="module")
def shared(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedRun]:
    stack = Stack(broker.bootstrap, tmp_path_factory.mktemp("ingest-shared"))
    stack.start_worker()
    records: list[tuple[bytes | None, bytes]] = []
    for good, bad in zip(GOOD, BAD.values(), strict=True):
        records += [(b"S2001", encode_event(good)), (b"S2001", bad)]
    offsets = produce_records(stack, records)
    batch = encode_batch([*BATCHED[:3], BAD_IN_BATCH, *BATCHED[3:]])
    produce_records(stack, [(b"S3001", batch)])
    produce_records(stack, [(b"S4001", encode_event(TWICE)), (b"S4001", encode_json(TWICE))])
    letters = read_dead_letters(stack, expected=len(BAD) + 1)
    seen = len(GOOD) + len(BATCHED) + 2  # the duplicate is accepted twice or deduplicated
    wait_until(
        lambda: (
            stack.metric_sum("abacus_events_accepted_total")
            + stack.metric_sum("abacus_events_deduplicated_total")
            >= seen
        ),
        60,
        f"{seen} events seen",
    )
    metrics = stack.metrics()
    assert stack.stop_worker() == 0
    yield SharedRun(stack, offsets[1::2], letters, metrics, _stored_events(stack))
    stack.close()


def test_bad_records_go_to_the_dead_letter_topic_and_good_ones_around_them_are_stored(
    shared: SharedRun,
) -> None:
    letters = shared.letters_of(b"S2001")
    assert len(letters) == len(BAD)
    for letter, (needle, raw), offset in zip(letters, BAD.items(), shared.bad_offsets, strict=True):
        assert letter["value"] == raw, "dead letter must carry the original bytes"
        assert needle in str(letter["abacus.reason"])
        assert letter["abacus.source.offset"] == str(offset)
        assert letter["abacus.source.partition"] == "0"
        assert letter["abacus.source.topic"] == shared.stack.topic("events")
    # Every dead letter of the run is counted: these four and the partly bad batch record.
    assert shared.metrics["abacus_dead_letters_total"] == len(BAD) + 1
    assert shared.stored_of("S2001") == {str(g["event_id"]) for g in GOOD}
    points = [
        row["payload"]["points"] for row in shared.stored.values() if row["student_id"] == "S2001"
    ]  # type: ignore[index]
    assert sorted(points) == [1, 2, 3, 4]


def test_a_batch_record_counts_each_event_and_keeps_good_events_of_a_partly_bad_batch(
    shared: SharedRun,
) -> None:
    [letter] = shared.letters_of(b"S3001")
    assert "event 4 of 8" in str(letter["abacus.reason"])
    assert shared.stored_of("S3001") == {str(e["event_id"]) for e in BATCHED}


def test_the_same_event_sent_twice_is_stored_once(shared: SharedRun) -> None:
    assert [e for e, row in shared.stored.items() if row["student_id"] == "S4001"] == [
        TWICE["event_id"]
    ]
    assert (
        shared.metrics["abacus_events_accepted_total{event_type=token_earned}"]
        + shared.metrics["abacus_events_deduplicated_total"]
        == 2
    )


def _ingest_processes(worker_pid: int) -> list[int]:
    """The worker's spawned ingest processes (not multiprocessing's resource tracker)."""
    return [pid for pid, cmdline in child_processes(worker_pid) if b"spawn_main" in cmdline]


def test_a_dead_ingest_process_stops_the_worker_and_a_restart_stores_everything_once(
    stack: Stack,
) -> None:
    stack.extra_env["ABACUS_INGEST_PROCESSES"] = "2"
    events = [sample_event("points_earned", student_id="S5001", points=i) for i in range(40)]
    stack.start_worker()
    assert stack.worker is not None
    children = _ingest_processes(stack.worker.pid)
    assert len(children) == 2
    os.kill(children[0], signal.SIGKILL)
    produce_records(stack, [(b"S5001", encode_event(e)) for e in events])
    # The worker must not carry on (or hang) without it: it exits with an error, having
    # committed nothing it did not store, so a supervisor's restart picks up the rest.
    assert stack.worker.wait(timeout=60) != 0
    assert "BrokenProcessPool" in stack.log_tail(200)
    stack.worker = None
    stack.start_worker()
    wait_until(
        lambda: stack.metric_sum("abacus_events_accepted_total") >= len(events),
        60,
        "every event accepted after the restart",
    )
    assert stack.stop_worker() == 0
    assert set(_stored_events(stack)) == {str(e["event_id"]) for e in events}
    # No district config in this stack: each event is stored once and marked pending once.
    assert stack.query("SELECT count() FROM abacus.pending_facts FINAL") == [[len(events)]]
