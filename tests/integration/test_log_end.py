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
        self.records_polled = 0

    def poll(self, *args: Any, **kwargs: Any) -> dict[TopicPartition, list[Any]]:
        polled: dict[TopicPartition, list[Any]] = super().poll(*args, **kwargs)
        for tp, records in polled.items():
            self.polls_with_records[tp] = self.polls_with_records.get(tp, 0) + 1
            self.records_polled += len(records)
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


def test_first_records_hands_out_one_record_per_partition_of_a_long_backlog(stack: Stack) -> None:
    ensure_topics(stack.settings)
    topic = stack.topic("events")
    producer = KafkaProducer(bootstrap_servers=stack.bootstrap, acks="all", linger_ms=50)
    sent = [
        producer.send(topic, value=b"%d-%d" % (p, i), partition=p, timestamp_ms=1_000_000 + i)
        for p in (0, 1)
        for i in range(2_000)
    ]
    producer.flush()
    producer.close()
    assert all(f.get(timeout=30) for f in sent)
    starts = {TopicPartition(topic, 0): 5, TopicPartition(topic, 1): 1_234}
    consumer = CountingConsumer(bootstrap_servers=stack.bootstrap, enable_auto_commit=False)
    found = first_records(consumer, starts)
    # Nothing past the first record of each partition was handed out, from 4,000 fetched.
    assert consumer.records_polled == 2
    consumer.close()
    assert {tp: (r.offset, r.value, r.timestamp) for tp, r in found.items()} == {
        TopicPartition(topic, 0): (5, b"0-5", 1_000_005),
        TopicPartition(topic, 1): (1_234, b"1-1234", 1_001_234),
    }
