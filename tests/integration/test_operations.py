"""Operations on the real broker: lag and group status, /metrics, readiness, clean
shutdown, dead-letter listing and replay."""

from __future__ import annotations

import json
import os
import signal
import threading
from collections import Counter
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from abacus.events.codec import encode_batch, encode_event, encode_json
from abacus.events.reasons import REASON_CLASSES
from abacus.kafka.topics import ensure_topics
from schemas import EVENT_TYPES as ALL_EVENT_TYPES
from tests.support.events import sample_event
from tests.support.produce import committed_offsets, produce_events, wait_consumed
from tests.support.stack import Stack, http_get, wait_until

EVENT_TYPES = ("lesson_started", "problem_attempted", "token_earned", "points_earned")


def _events(n: int, students: int = 12, tag: str = "S") -> list[dict[str, Any]]:
    return [
        sample_event(EVENT_TYPES[i % len(EVENT_TYPES)], student_id=f"{tag}{i % students:04d}")
        for i in range(n)
    ]


def _lag(stack: Stack, *args: str) -> tuple[int, dict[str, Any]]:
    proc = stack.run("lag", "--json", *args, check=False)
    assert proc.returncode in (0, 3), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def _group(doc: dict[str, Any], group: str) -> dict[str, Any]:
    return next(g for g in doc["groups"] if g["group"] == group)


def _events_lag(group: dict[str, Any], topic: str) -> dict[int, int]:
    return {p["partition"]: p["lag"] for p in group["partitions"] if p["topic"] == topic}


def test_lag_is_exact_for_a_group_stopped_mid_topic(stack: Stack) -> None:
    ensure_topics(stack.settings)
    ends = produce_events(stack, _events(400))  # many records per batch: the Tansu quirk
    assert len(ends) == 4
    topic, group = stack.topic("events"), f"reader-{stack.tag}"
    consumer = KafkaConsumer(
        bootstrap_servers=stack.bootstrap, group_id=group, enable_auto_commit=False
    )
    parts = [TopicPartition(topic, p) for p in range(4)]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    wanted = {0: 0, 1: 7, 2: 30, 3: ends[3]}  # nothing, a few, more, everything
    seen: dict[int, list[int]] = {p: [] for p in range(4)}

    def consumed_enough() -> bool:
        for tp, recs in consumer.poll(timeout_ms=300).items():
            seen[tp.partition].extend(r.offset for r in recs)
        return all(len(seen[p]) >= wanted[p] for p in range(4))

    wait_until(consumed_enough, 30, "records to consume")
    commits = {
        TopicPartition(topic, p): OffsetAndMetadata(sorted(seen[p])[n - 1] + 1, "", -1)
        for p, n in wanted.items()
        if n
    }
    consumer.commit(commits)
    consumer.close()

    code, doc = _lag(stack, "--group", group, "--window", "1", "--samples", "2")
    report = _group(doc, group)
    rows = {p["partition"]: p for p in report["partitions"]}
    assert {p: r["lag"] for p, r in rows.items()} == {p: ends[p] - wanted[p] for p in range(4)}
    assert {p: r["log_end"] for p, r in rows.items()} == ends
    assert rows[0]["committed"] is None
    assert rows[3]["lag"] == 0
    assert rows[3]["lag_seconds"] == 0
    assert rows[3]["status"] == "ok"
    assert 0 < rows[1]["lag_seconds"] < 600  # age of the record at the committed offset
    assert report["members"] == 0
    assert report["status"] == "stopped"
    assert code == 3
    table = stack.run("lag", "--group", group, "--window", "0", check=False)
    assert table.returncode == 3
    assert f"{group}: STOPPED" in table.stdout
    assert f"consumer group {group} is stopped" in table.stderr


def test_status_follows_a_paused_and_a_killed_worker(stack: Stack) -> None:
    topic, group = stack.topic("events"), stack.settings.ingest_group
    stack.start_worker()
    wait_consumed(stack, produce_events(stack, _events(80)), timeout=60)
    code, doc = _lag(stack, "--window", "1", "--samples", "2")
    assert (code, _group(doc, group)["status"]) == (0, "ok")
    assert set(_events_lag(_group(doc, group), topic).values()) == {0}

    assert stack.worker is not None
    os.kill(stack.worker.pid, signal.SIGSTOP)
    try:
        ends = produce_events(stack, _events(40, tag="P"), seed=2)
        code, doc = _lag(stack, "--window", "3", "--samples", "3")
    finally:
        os.kill(stack.worker.pid, signal.SIGCONT)
    assert code == 3
    assert _group(doc, group)["status"] in ("stalled", "stopped")
    assert sum(_events_lag(_group(doc, group), topic).values()) == 40
    wait_consumed(stack, ends, timeout=90)
    code, doc = _lag(stack, "--window", "1", "--samples", "2")
    assert (code, _group(doc, group)["status"]) == (0, "ok")

    # Killed: Tansu keeps listing the dead member (no session-timeout eviction seen in 30 s),
    # so the group reads as stalled there; a broker that evicts it then says stopped.
    assert stack.kill_worker() == -signal.SIGKILL
    ends = produce_events(stack, _events(10, tag="K"), seed=3)
    code, doc = _lag(stack, "--window", "3", "--samples", "3")
    assert code == 3
    assert _group(doc, group)["status"] in ("stalled", "stopped")
    stack.start_worker()
    wait_consumed(stack, ends, timeout=90)
    code, doc = _lag(stack, "--window", "1", "--samples", "2")
    assert (code, _group(doc, group)["status"]) == (0, "ok")

    # Stopped cleanly (the member leaves the group), then more events: stopped.
    assert stack.stop_worker() == 0
    produce_events(stack, _events(10, tag="Z"), seed=4)
    code, doc = _lag(stack, "--window", "0")
    assert (code, _group(doc, group)["status"], _group(doc, group)["members"]) == (3, "stopped", 0)


def test_readiness_flips_and_metrics_match_what_was_sent(stack: Stack) -> None:
    seen: list[tuple[int, bytes]] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            status, body = http_get(f"{stack.url}/readyz", timeout=1)
            if status and (not seen or seen[-1][0] != status):
                seen.append((status, body))
            stop.wait(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        stack.start_worker()
        # start_worker returns on its own 200; let the watcher record one too.
        wait_until(lambda: bool(seen) and seen[-1][0] == 200, 10, "the watcher to see 200")
    finally:
        stop.set()
        watcher.join()
    assert [s for s, _ in seen] == [503, 200], seen
    not_ready = json.loads(seen[0][1])
    assert not_ready == {
        "ready": False,
        "checks": {"topics": True, "migrations": True, "assignment": False, "roster_store": True},
    }
    assert json.loads(seen[1][1])["ready"] is True

    good = _events(60, students=6, tag="M")
    dup = sample_event("points_earned", student_id="M9000")
    records: list[tuple[bytes, bytes]] = [(e["student_id"].encode(), encode_event(e)) for e in good]
    records += [
        (b"M9000", encode_batch([dup, dup, sample_event("token_earned", student_id="M9000")])),
        (b"M9001", b"\x00garbage"),
        (
            b"M9001",
            encode_json(sample_event("quiz_submitted", student_id="M9001", score_percent=-3.0)),
        ),
        (b"M9002", encode_event(sample_event("points_earned", student_id="M9003"))),
    ]
    producer = KafkaProducer(bootstrap_servers=stack.bootstrap, acks="all")
    for key, value in records:
        producer.send(stack.topic("events"), key=key, value=value)
    producer.flush()
    producer.close()
    expected = Counter(e["event_type"] for e in good) + Counter(["points_earned", "token_earned"])
    wait_until(
        lambda: (
            stack.metric_sum("abacus_dead_letters_total") >= 3
            and stack.metric_sum("abacus_events_accepted_total") >= sum(expected.values())
        ),
        60,
        "every record handled",
    )
    metrics = stack.metrics()
    accepted = {
        k.split("=")[1].rstrip("}"): v
        for k, v in metrics.items()
        if k.startswith("abacus_events_accepted_total{")
    }
    # Every event type and reject reason is exported from the start, at 0 until it happens.
    assert set(accepted) == set(ALL_EVENT_TYPES)
    assert {t: v for t, v in accepted.items() if v} == {t: float(n) for t, n in expected.items()}
    assert metrics["abacus_events_deduplicated_total"] == 1
    assert metrics["abacus_dead_letters_total"] == 3
    rejected = {k: v for k, v in metrics.items() if k.startswith("abacus_events_rejected_total")}
    assert len(rejected) == len(REASON_CLASSES)
    assert {k: v for k, v in rejected.items() if v} == {
        "abacus_events_rejected_total{reason=undecodable}": 1,
        "abacus_events_rejected_total{reason=out_of_range}": 1,
        "abacus_events_rejected_total{reason=key_mismatch}": 1,
    }
    assert metrics["abacus_ready"] == 1
    assert metrics["abacus_ingest_batch_records_sum"] == len(records)
    assert metrics["abacus_clickhouse_insert_seconds_count"] >= 1
    lag_labels = {
        f"abacus_consumer_lag_records{{group={stack.settings.ingest_group},partition={p},topic={stack.topic('events')}}}"
        for p in range(4)
    }
    wait_until(lambda: all(stack.metrics().get(k) == 0 for k in lag_labels), 30, "lag gauges at 0")
    students = {e["student_id"] for e in good} | {"M9000", "M9001", "M9002", "M9003"}
    assert not any(s in key for key in stack.metrics() for s in students), "no ids in labels"
    assert stack.stop_worker() == 0
    log = (stack.home / "worker.log").read_text(errors="replace")
    assert "dead-lettered" in log
    assert not [s for s in students if s in log], "no student ids in the worker's log"


def test_sigterm_flushes_the_batch_and_commits_every_offset(stack: Stack) -> None:
    stack.start_worker()
    events = _events(3000, students=50, tag="T")
    ends = produce_events(stack, events, batch_share=0.3)
    wait_until(
        lambda: stack.metric_sum("abacus_events_accepted_total") >= len(events),
        120,
        "every event accepted",
    )
    assert stack.stop_worker(signal.SIGTERM) == 0
    assert committed_offsets(stack) == ends
    rows = stack.query("SELECT count(), uniqExact(event_id) FROM abacus.events FINAL")
    assert rows == [[len(events), len(events)]]


def _replayed_headers(stack: Stack) -> list[str]:
    consumer = KafkaConsumer(
        bootstrap_servers=stack.bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=1500,
    )
    consumer.assign([TopicPartition(stack.topic("events"), p) for p in range(4)])
    found = [
        value.decode()
        for rec in consumer
        for key, value in rec.headers or []
        if key == "abacus.replayed_from"
    ]
    consumer.close()
    return sorted(found)


def test_dead_letter_list_and_replay_lands_every_event_once(stack: Stack) -> None:
    good = [sample_event("token_earned", student_id="D0001", tokens=i + 1) for i in range(5)]
    bad = sample_event("quiz_submitted", student_id="D0001", score_percent=140.0)
    records = [(b"D0001", encode_event(e)) for e in good[:3]]
    records += [
        (b"D0001", encode_batch([good[3], bad, good[4]])),  # good ones kept, record dead-lettered
        (b"D0001", b"\xffnot an event"),
        (b"D0002", encode_event(sample_event("points_earned", student_id="D0003"))),
    ]
    stack.start_worker()
    producer = KafkaProducer(bootstrap_servers=stack.bootstrap, acks="all")
    offsets = [
        producer.send(stack.topic("events"), key=k, value=v, partition=0).get(timeout=10).offset
        for k, v in records
    ]
    producer.close()
    wait_until(lambda: stack.metric_sum("abacus_dead_letters_total") >= 3, 60, "3 dead letters")

    listed = [json.loads(line) for line in stack.run("dlq", "list", "--json").stdout.splitlines()]
    assert [(r["offset"], r["source_partition"], r["source_offset"]) for r in listed] == [
        (0, 0, offsets[3]),
        (1, 0, offsets[4]),
        (2, 0, offsets[5]),
    ]
    assert "score_percent" in listed[0]["reason"]
    assert listed[1]["size"] == len(records[4][1])
    assert "2 of 3" in stack.run("dlq", "list", "--limit", "2").stdout
    refused = stack.run("dlq", "replay", check=False)
    assert refused.returncode == 2
    assert "--all" in refused.stderr

    summary = stack.run("dlq", "replay", "--all").stdout
    assert f"replayed 3 of 3 dead-lettered record(s) to {stack.topic('events')}" in summary
    assert f"{stack.topic('events-dlq')}[0] 0-2" in summary
    # Still bad: the three come back to the DLQ; the two good events of the batch count once.
    wait_until(lambda: stack.metric_sum("abacus_dead_letters_total") >= 6, 60, "6 dead letters")
    wait_until(lambda: stack.metric_sum("abacus_events_accepted_total") >= 7, 30, "replay read")
    assert stack.stop_worker() == 0

    dlq = stack.topic("events-dlq")
    assert _replayed_headers(stack) == [f"{dlq}:0:0", f"{dlq}:0:1", f"{dlq}:0:2"]
    rows = stack.query(
        "SELECT count(), uniqExact(event_id), sum(JSONExtractInt(payload, 'tokens')) "
        "FROM abacus.events FINAL"
    )
    assert rows == [[5, 5, 15]]
    relisted = stack.run("dlq", "list", "--json").stdout.splitlines()
    assert len(relisted) == 6
    assert "score_percent" in json.loads(relisted[3])["reason"]
