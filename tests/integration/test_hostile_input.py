"""Hostile records against a running worker: it stays up, good events are stored once,
every hostile record reaches the dead-letter topic (whole, or as an oversized pointer);
and a batch that keeps crashing the worker is quarantined after N attempts.

Both scenarios run, one after the other, on one `abacus up` (the session broker; `up`
supervises the worker): first the hostile mix, which must leave the first worker process
running, then the poison batch, which crashes it twice. They use different students.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition

from abacus.embedded.broker import EmbeddedBroker
from abacus.events.codec import encode_event, encode_json
from abacus.events.dead_letter import REPLAYED_FROM
from abacus.events.reasons import MAX_REASON_CHARS, REASON_CLASSES
from abacus.kafka.log_end import true_log_ends
from tests.support.events import sample_event
from tests.support.produce import produce_records, read_dead_letters
from tests.support.stack import Stack, wait_until
from tests.unit.test_hostile_records import HOSTILE

BIG = {
    "1.5 MiB of garbage": b"\x07" * (3 << 19),
    "1 MiB JSON with a huge unknown field": b'{"x": "' + b"y" * (1 << 20) + b'"}',
}
ALL_HOSTILE = {**HOSTILE, **BIG}
# Over the dead-letter limit (1,000,000 bytes by default): sent as pointers.
OVERSIZED = {name for name, value in ALL_HOSTILE.items() if len(value) > 990_000}
GOOD = [sample_event("points_earned", student_id="S1", points=i) for i in range(len(ALL_HOSTILE))]
# The poison batch: events before and after it, and the record that crashes the worker.
BEFORE = [sample_event("points_earned", student_id="S2", points=i) for i in range(5)]
POISON = sample_event("points_earned", student_id="poison", points=99)
AFTER = [sample_event("points_earned", student_id="S3", points=i) for i in range(5)]


def _replayed_values(stack: Stack) -> list[bytes]:
    consumer = KafkaConsumer(bootstrap_servers=stack.bootstrap, fetch_max_bytes=16 << 20)
    tp = TopicPartition(stack.topic("events"), 0)
    end = true_log_ends(consumer, consumer.end_offsets([tp]))[tp]
    consumer.assign([tp])
    consumer.seek(tp, 0)
    out: list[bytes] = []

    def poll() -> bool:
        for recs in consumer.poll(timeout_ms=500).values():
            out.extend(
                rec.value
                for rec in recs
                if any(key == REPLAYED_FROM for key, _ in rec.headers or [])
            )
        return consumer.position(tp) >= end

    wait_until(poll, 30, "the events topic read to its end")
    consumer.close()
    return out


def _at(item: tuple[str, int]) -> int:
    return item[1]


@dataclass
class SharedRun:
    """What the one `abacus up` made of both scenarios."""

    hostile_offsets: dict[str, int]  # hostile record name -> its offset
    hostile_letters: list[dict[str, Any]]  # the dead letters of the hostile mix
    first_worker_kept: bool  # the same worker process ran the whole hostile mix
    starts_after_hostile: int  # "worker started" lines in the log by then
    oversized_total: float  # abacus_dead_letters_oversized_total after the hostile mix
    poison_offset: int
    poison_letters: list[dict[str, Any]]  # dead letters after the hostile ones
    poison_batches_total: float  # on the worker that quarantined the batch
    exit_code: int  # of `abacus up` on SIGTERM
    log: str
    stored: dict[str, int]  # event_id -> rows in events
    kept: list[list[Any]]  # (src_offset, length(value), reason) of the dead_letters table
    replay_summary: str  # `abacus dlq replay --reason-contains "oversized: "`
    replayed: list[bytes]  # values on the events topic tagged as replayed


@pytest.fixture(scope="module")
def shared(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedRun]:
    stack = Stack(broker.bootstrap, tmp_path_factory.mktemp("hostile") / "home")
    stack.extra_env.update(
        # The hostile records cross to an ingest process and back (pickled both ways).
        ABACUS_INGEST_PROCESSES="1",
        # The test-only fault: the worker process exits at once (like a segfault) whenever
        # a batch it is about to store holds a record keyed "poison".
        ABACUS_TEST_CRASH_ON_KEY="poison",
        ABACUS_POISON_ATTEMPTS="2",
        ABACUS_SUPERVISOR__BACKOFF_INITIAL_S="0.2",
        # Short group timeouts: each restarted worker's join waits for the dead member.
        ABACUS_BROKER__SESSION_TIMEOUT_S="2",
        ABACUS_BROKER__REBALANCE_TIMEOUT_S="2",
        ABACUS_BROKER__HEARTBEAT_INTERVAL_S="0.5",
    )
    stack.start_up()  # against the session broker: `abacus up` supervises the worker only
    first_worker = stack.supervised_worker_pid()
    assert first_worker is not None

    # 1. The hostile mix, each hostile record between two good events.
    records: list[tuple[bytes | None, bytes]] = []
    for event, bad in zip(GOOD, ALL_HOSTILE.values(), strict=True):
        records += [(b"S1", encode_event(event)), (b"S1", bad)]
    offsets = produce_records(stack, records)
    hostile_letters = read_dead_letters(stack, expected=len(ALL_HOSTILE))
    wait_until(
        lambda: stack.metric_sum("abacus_events_accepted_total") >= len(GOOD),
        60,
        "every good event accepted",
    )
    kept_first = stack.worker is not None and stack.worker.poll() is None
    kept_first = kept_first and stack.supervised_worker_pid() == first_worker
    starts = stack.log_tail(2000).count("worker started")
    oversized_total = stack.metric_sum("abacus_dead_letters_oversized_total")

    # 2. The poison batch.
    produce_records(stack, [(b"S2", encode_event(e)) for e in BEFORE])
    wait_until(
        lambda: stack.metric_sum("abacus_events_accepted_total") >= len(GOOD) + len(BEFORE),
        60,
        "before",
    )
    [poison_offset] = produce_records(stack, [(b"poison", encode_json(POISON))])
    letters = read_dead_letters(stack, expected=len(ALL_HOSTILE) + 1, timeout=120)
    wait_until(stack._ready, 60, "the restarted worker to be ready")
    poison_batches = stack.metric_sum("abacus_poison_batches_total")
    produce_records(stack, [(b"S3", encode_event(e)) for e in AFTER])
    wait_until(lambda: stack.metric_sum("abacus_events_accepted_total") >= 5, 60, "after")
    code = stack.stop_worker(signal.SIGTERM)

    stored = stack.query("SELECT toString(event_id), count() FROM abacus.events GROUP BY event_id")
    kept = stack.query(
        "SELECT src_offset, length(value), reason FROM abacus.dead_letters ORDER BY src_offset"
    )
    summary = stack.run("dlq", "replay", "--reason-contains", "oversized: ").stdout
    yield SharedRun(
        hostile_offsets=dict(zip(ALL_HOSTILE, offsets[1::2], strict=True)),
        hostile_letters=hostile_letters,
        first_worker_kept=kept_first,
        starts_after_hostile=starts,
        oversized_total=oversized_total,
        poison_offset=poison_offset,
        poison_letters=letters[len(hostile_letters) :],
        poison_batches_total=poison_batches,
        exit_code=code,
        log=stack.log_tail(4000),
        stored={event_id: n for event_id, n in stored},
        kept=kept,
        replay_summary=summary,
        replayed=_replayed_values(stack),
    )
    stack.close()


def _all_stored_once() -> dict[str, int]:
    return {str(e["event_id"]): 1 for e in GOOD + BEFORE + AFTER}


def test_hostile_records_never_stop_a_running_worker(shared: SharedRun) -> None:
    assert shared.first_worker_kept, "the worker stayed up: the same process throughout"
    assert shared.starts_after_hostile == 1, "no restart during the hostile mix"
    assert len(OVERSIZED) == 4
    assert shared.oversized_total == len(OVERSIZED)
    assert shared.exit_code == 0

    by_offset = {int(letter["abacus.source.offset"]): letter for letter in shared.hostile_letters}
    assert set(by_offset) == set(shared.hostile_offsets.values()), "each hostile record, once"
    for name, offset in shared.hostile_offsets.items():
        letter = by_offset[offset]
        reason = letter["abacus.reason"]
        assert len(reason) <= MAX_REASON_CHARS
        assert reason.split(":")[0] in REASON_CLASSES
        if name in OVERSIZED:
            assert reason.startswith("oversized: "), name
            assert letter["value"] == b""
            assert int(letter["abacus.oversized.bytes"]) > len(ALL_HOSTILE[name])
        else:
            assert letter["value"] == ALL_HOSTILE[name], name
    # Good events once each, and nothing stored from a hostile record.
    assert shared.stored == _all_stored_once()
    # A pointer replays the original bytes, read back from its source offset.
    total = len(ALL_HOSTILE) + 1  # the poison batch's dead letter is on the topic too
    assert f"replayed {len(OVERSIZED)} of {total} dead-lettered record(s)" in shared.replay_summary
    assert sorted(shared.replayed) == sorted(ALL_HOSTILE[name] for name in OVERSIZED)
    # ClickHouse keeps every dead letter whole, the oversized ones too.
    hostile_kept = [[o, n] for o, n, _ in shared.kept if o != shared.poison_offset]
    expected = sorted(shared.hostile_offsets.items(), key=_at)
    assert hostile_kept == [[o, len(ALL_HOSTILE[n])] for n, o in expected]


def test_a_batch_that_keeps_crashing_the_worker_is_dead_lettered_after_n_attempts(
    shared: SharedRun,
) -> None:
    [letter] = shared.poison_letters
    assert letter["abacus.source.offset"] == str(shared.poison_offset)
    assert letter["abacus.reason"].startswith("poison_batch: ")
    assert letter["value"] == encode_json(POISON)
    assert shared.poison_batches_total == 1
    assert shared.exit_code == 0
    assert shared.log.count("test fault: exiting at once") == 2, "two attempts, then quarantined"
    assert "POISON BATCH" in shared.log
    assert shared.stored == _all_stored_once(), "before and after stored once, poison never"
    [poison_kept] = [row for row in shared.kept if row[0] == shared.poison_offset]
    assert poison_kept[1] == len(encode_json(POISON))
    assert poison_kept[2].startswith("poison_batch: ")
