"""The real end of a log on the Tansu broker (abacus/kafka/log_end.py) while records arrive."""

from __future__ import annotations

import threading
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from abacus.kafka.log_end import first_records, true_log_ends
from abacus.kafka.topics import ensure_topics
from tests.support.stack import Stack


class CountingConsumer(KafkaConsumer):  # type: ignore[misc]
    """Counts, per partition, the polls that returned its records."""

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        self.polls_with_records: dict[TopicPartition, int] = {}

    def poll(self, *args: Any, **kwargs: Any) -> dict[TopicPartition, list[Any]]:
        polled: dict[TopicPartition, list[Any]] = super().poll(*args, **kwargs)
        for tp in polled:
            self.polls_with_records[tp] = self.polls_with_records.get(tp, 0) + 1
        return polled


def test_the_end_is_read_from_one_fetch_while_a_producer_keeps_sending(stack: Stack) -> None:
    ensure_topics(stack.settings)
    tp = TopicPartition(stack.topic("events"), 0)
    producer = KafkaProducer(bootstrap_servers=stack.bootstrap, acks="all", linger_ms=50)
    first = [producer.send(tp.topic, value=b"x%d" % i, partition=0) for i in range(50)]
    producer.flush()
    batch_end = max(f.get(timeout=30).offset for f in first) + 1
    consumer = CountingConsumer(bootstrap_servers=stack.bootstrap, enable_auto_commit=False)
    reported = consumer.end_offsets([tp])
    assert reported[tp] < batch_end  # the quirk: the last batch's base offset + 1

    # A producer that never goes quiet: reading until quiet would read for 5 s.
    stop = threading.Event()

    def keep_sending() -> None:
        while not stop.wait(0.01):
            producer.send(tp.topic, value=b"more", partition=0)

    sender = threading.Thread(target=keep_sending, daemon=True)
    sender.start()
    try:
        end = true_log_ends(consumer, reported)[tp]
    finally:
        stop.set()
        sender.join()
        producer.flush()
    producer.close()
    consumer.close()
    assert end >= batch_end  # at least the whole batch that was last when asked
    # The partition is read once: its first fetch holds the whole last batch.
    assert consumer.polls_with_records == {tp: 1}


def test_ends_and_first_records_stay_exact_read_in_turn_on_one_consumer(stack: Stack) -> None:
    """As the lag reader uses them: one consumer, a log end read and then the records at
    the committed offsets, tick after tick (a paused partition's parked records once made
    the next log end read miss partitions, every time)."""
    ensure_topics(stack.settings)
    topic = stack.topic("events")
    producer = KafkaProducer(bootstrap_servers=stack.bootstrap, acks="all", linger_ms=50)
    parts = [TopicPartition(topic, p) for p in range(4)]
    consumer = KafkaConsumer(bootstrap_servers=stack.bootstrap, enable_auto_commit=False)
    truth: dict[TopicPartition, int] = {}
    for tick in range(4):
        sent = [
            producer.send(topic, value=b"%d-%d" % (tick, i), partition=i % 4,
                          timestamp_ms=1_000_000 * (tick + 1) + i)
            for i in range(400)
        ]  # fmt: skip
        producer.flush()
        for future in sent:
            meta = future.get(timeout=30)
            tp = TopicPartition(topic, meta.partition)
            truth[tp] = max(truth.get(tp, 0), meta.offset + 1)
        reported = consumer.end_offsets(parts)
        assert any(reported[tp] < truth[tp] for tp in parts)  # the quirk is there to fix
        assert true_log_ends(consumer, reported) == truth
        # The first record this tick sent to each partition: offsets 100 * tick.
        found = first_records(consumer, {tp: 100 * tick for tp in parts})
        assert {tp: (r.offset, r.timestamp) for tp, r in found.items()} == {
            tp: (100 * tick, 1_000_000 * (tick + 1) + tp.partition) for tp in parts
        }
    producer.close()
    consumer.close()


def test_a_read_decodes_a_batch_only_up_to_the_record_it_needs(stack: Stack) -> None:
    """One producer batch of 2,000 records: its end, and the record at an offset inside it,
    are read without decoding the rest of it (kafka-python decodes a fetched batch lazily;
    draining every poll decoded whole batches, ~0.7 s of the worker's CPU a lag tick while
    300k records lagged)."""
    ensure_topics(stack.settings)
    tp = TopicPartition(stack.topic("events"), 1)
    producer = KafkaProducer(
        bootstrap_servers=stack.bootstrap, acks="all", linger_ms=500, batch_size=1 << 20
    )
    sent = [
        producer.send(tp.topic, value=b"r%d" % i, partition=1, timestamp_ms=1_000_000 + i)
        for i in range(2000)
    ]
    producer.flush()
    producer.close()
    offsets = [future.get(timeout=30).offset for future in sent]
    base, end = offsets[0], offsets[-1] + 1
    decoded: list[bytes] = []

    def counting(value: bytes) -> bytes:
        decoded.append(value)
        return value

    consumer = KafkaConsumer(
        bootstrap_servers=stack.bootstrap, enable_auto_commit=False, value_deserializer=counting
    )
    reported = consumer.end_offsets([tp])
    assert reported[tp] < end  # one batch: the quirk reports its base offset + 1
    assert true_log_ends(consumer, reported) == {tp: end}
    # The read started at reported - 1: only the records of the batch up to there.
    assert 1 <= len(decoded) <= reported[tp] - base
    read_for_end = len(decoded)
    found = first_records(consumer, {tp: base + 10})
    consumer.close()
    assert (found[tp].offset, found[tp].timestamp) == (base + 10, 1_000_010)
    assert len(decoded) - read_for_end == 11  # the ten before it in its batch, and it
