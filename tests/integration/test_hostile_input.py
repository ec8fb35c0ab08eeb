"""Hostile records against a running worker: it stays up, good events are stored once,
every hostile record reaches the dead-letter topic (whole, or as an oversized pointer);
and a batch that keeps crashing the worker is quarantined after N attempts."""

from __future__ import annotations

import signal
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from abacus.events.codec import encode_event, encode_json
from abacus.events.reasons import MAX_REASON_CHARS, REASON_CLASSES
from tests.support.events import sample_event
from tests.support.stack import Stack, wait_until
from tests.unit.test_hostile_records import HOSTILE

BIG = {
    "1.5 MiB of garbage": b"\x07" * (3 << 19),
    "1 MiB JSON with a huge unknown field": b'{"x": "' + b"y" * (1 << 20) + b'"}',
}


def _produce(stack: Stack, records: list[tuple[bytes | None, bytes]]) -> list[int]:
    producer = KafkaProducer(
        bootstrap_servers=stack.bootstrap, acks="all", max_request_size=8 << 20
    )
    futures = [
        producer.send(stack.topic("events"), key=k, value=v, partition=0) for k, v in records
    ]
    producer.flush()
    offsets = [f.get(timeout=30).offset for f in futures]
    producer.close()
    return offsets


def _dead_letters(stack: Stack, expected: int, timeout: float = 60) -> list[dict[str, Any]]:
    consumer = KafkaConsumer(
        bootstrap_servers=stack.bootstrap, fetch_max_bytes=16 << 20, consumer_timeout_ms=2000
    )
    tp = TopicPartition(stack.topic("events-dlq"), 0)
    consumer.assign([tp])
    consumer.seek(tp, 0)
    out: list[dict[str, Any]] = []

    def poll() -> bool:
        for recs in consumer.poll(timeout_ms=500).values():
            for rec in recs:
                headers = {k: v.decode() for k, v in rec.headers}
                out.append({"key": rec.key, "value": rec.value, **headers})
        return len(out) >= expected

    wait_until(poll, timeout, f"{expected} dead letters")
    consumer.close()
    return out


def _replayed_values(stack: Stack) -> list[bytes]:
    consumer = KafkaConsumer(
        bootstrap_servers=stack.bootstrap, fetch_max_bytes=16 << 20, consumer_timeout_ms=3000
    )
    tp = TopicPartition(stack.topic("events"), 0)
    consumer.assign([tp])
    consumer.seek(tp, 0)
    out = [
        rec.value
        for rec in consumer
        if any(key == "abacus.replayed_from" for key, _ in rec.headers or [])
    ]
    consumer.close()
    return out


def _stored_counts(stack: Stack) -> dict[str, int]:
    rows = stack.query("SELECT toString(event_id), count() FROM abacus.events GROUP BY event_id")
    return {event_id: n for event_id, n in rows}


def test_hostile_records_never_stop_a_running_worker(stack: Stack) -> None:
    stack.extra_env["ABACUS_INGEST_PROCESSES"] = "1"
    hostile = {**HOSTILE, **BIG}
    good = [sample_event("points_earned", student_id="S1", points=i) for i in range(len(hostile))]
    records: list[tuple[bytes | None, bytes]] = []
    for event, bad in zip(good, hostile.values(), strict=True):
        records += [(b"S1", encode_event(event)), (b"S1", bad)]
    stack.start_worker()
    assert stack.worker is not None
    pid = stack.worker.pid
    offsets = _produce(stack, records)
    letters = _dead_letters(stack, expected=len(hostile))
    wait_until(
        lambda: stack.metric_sum("abacus_events_accepted_total") >= len(good),
        60,
        "every good event accepted",
    )
    assert stack.worker.poll() is None, "the worker stayed up"
    assert stack.worker.pid == pid
    # Over the dead-letter limit (1,000,000 bytes by default): sent as pointers.
    oversized = {name for name, value in hostile.items() if len(value) > 990_000}
    assert len(oversized) == 4
    assert stack.metric_sum("abacus_dead_letters_oversized_total") == len(oversized)
    assert stack.stop_worker() == 0

    by_offset = {int(letter["abacus.source.offset"]): letter for letter in letters}
    hostile_offsets = dict(zip(hostile, offsets[1::2], strict=True))
    assert set(by_offset) == set(hostile_offsets.values()), "each hostile record, once"
    for name, offset in hostile_offsets.items():
        letter = by_offset[offset]
        reason = letter["abacus.reason"]
        assert len(reason) <= MAX_REASON_CHARS
        assert reason.split(":")[0] in REASON_CLASSES
        if name in oversized:
            assert reason.startswith("oversized: "), name
            assert letter["value"] == b""
            assert int(letter["abacus.oversized.bytes"]) > len(hostile[name])
        else:
            assert letter["value"] == hostile[name], name
    assert _stored_counts(stack) == {str(e["event_id"]): 1 for e in good}
    # A pointer replays the original bytes, read back from its source offset.
    summary = stack.run("dlq", "replay", "--reason-contains", "oversized: ").stdout
    assert f"replayed {len(oversized)} of {len(hostile)} dead-lettered record(s)" in summary
    replayed = _replayed_values(stack)
    assert sorted(replayed) == sorted(hostile[name] for name in oversized)
    # ClickHouse keeps every dead letter whole, the oversized ones too.
    kept = stack.query(
        "SELECT src_offset, length(value) FROM abacus.dead_letters ORDER BY src_offset"
    )
    assert kept == [[o, len(hostile[n])] for n, o in sorted(hostile_offsets.items(), key=_at)]


def _at(item: tuple[str, int]) -> int:
    return item[1]


def test_a_batch_that_keeps_crashing_the_worker_is_dead_lettered_after_n_attempts(
    stack: Stack,
) -> None:
    # The test-only fault: the worker process exits at once (like a segfault) whenever a
    # batch it is about to store holds a record keyed "poison".
    stack.extra_env.update(
        ABACUS_TEST_CRASH_ON_KEY="poison",
        ABACUS_POISON_ATTEMPTS="2",
        ABACUS_INGEST_PROCESSES="0",
        ABACUS_SUPERVISOR__BACKOFF_INITIAL_S="0.2",
        # Short group timeouts: each restarted worker's join waits for the dead member.
        ABACUS_BROKER__SESSION_TIMEOUT_S="2",
        ABACUS_BROKER__REBALANCE_TIMEOUT_S="2",
        ABACUS_BROKER__HEARTBEAT_INTERVAL_S="0.5",
    )
    before = [sample_event("points_earned", student_id="S1", points=i) for i in range(5)]
    poison = sample_event("points_earned", student_id="poison", points=99)
    after = [sample_event("points_earned", student_id="S2", points=i) for i in range(5)]
    stack.start_up()  # against the session broker: `abacus up` supervises the worker only
    _produce(stack, [(b"S1", encode_event(e)) for e in before])
    wait_until(lambda: stack.metric_sum("abacus_events_accepted_total") >= 5, 60, "before")
    [poison_offset] = _produce(stack, [(b"poison", encode_json(poison))])

    letters = _dead_letters(stack, expected=1, timeout=120)
    assert letters[0]["abacus.source.offset"] == str(poison_offset)
    assert letters[0]["abacus.reason"].startswith("poison_batch: ")
    assert letters[0]["value"] == encode_json(poison)
    wait_until(stack._ready, 60, "the restarted worker to be ready")
    assert stack.metric_sum("abacus_poison_batches_total") == 1
    _produce(stack, [(b"S2", encode_event(e)) for e in after])
    wait_until(lambda: stack.metric_sum("abacus_events_accepted_total") >= 5, 60, "after")
    assert stack.stop_worker(signal.SIGTERM) == 0

    log = stack.log_tail(2000)
    assert log.count("test fault: exiting at once") == 2, "two attempts, then quarantined"
    assert "POISON BATCH" in log
    stored = _stored_counts(stack)
    assert set(stored) == {str(e["event_id"]) for e in before + after}
