"""Kafka I/O of the roster importer: read compacted topics to their end, publish records."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from abacus.errors import StackError
from abacus.kafka.log_end import true_log_ends
from abacus.kafka_clients import kafka_python_config
from abacus.settings import AbacusSettings

__all__ = ["publish", "read_latest"]

_POLL_MS = 1000


def read_latest(
    settings: AbacusSettings, topics: Sequence[str], *, timeout_s: float = 120.0
) -> dict[str, dict[bytes, bytes | None]]:
    """The last value per key of each topic, read from the beginning to the end.

    The end is not taken from ``end_offsets`` alone: on the local Tansu broker it reports
    the base offset of the last batch + 1, not the end of that batch (`true_log_ends`).
    """
    servers = settings.broker.servers
    state: dict[str, dict[bytes, bytes | None]] = {topic: {} for topic in topics}
    try:
        consumer = KafkaConsumer(
            **kafka_python_config(settings.broker),
            group_id=None,
            enable_auto_commit=False,
            # Brokers check CRCs on produce; kafka-python's pure-Python CRC32C would cost
            # about 60% of reading 100k records here.
            check_crcs=False,
            client_id=f"{settings.app_id}-roster-reader",
        )
    except KafkaError as exc:
        raise StackError(f"broker {servers} unreachable: {exc}") from exc
    try:
        partitions = []
        for topic in topics:
            ids = consumer.partitions_for_topic(topic)
            if not ids:
                raise StackError(f"topic {topic} does not exist on {servers}")
            partitions += [TopicPartition(topic, p) for p in sorted(ids)]
        end = true_log_ends(consumer, consumer.end_offsets(partitions))
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + timeout_s
        while True:
            polled = consumer.poll(timeout_ms=_POLL_MS, max_records=50_000)
            for tp, records in polled.items():
                latest = state[tp.topic]
                for record in records:
                    if record.key is not None:
                        latest[record.key] = record.value
            if all(consumer.position(tp) >= end[tp] for tp in partitions):
                return state
            if time.monotonic() > deadline:
                raise StackError(f"reading roster topics from {servers} timed out")
    except KafkaError as exc:
        raise StackError(f"cannot read roster topics from {servers}: {exc}") from exc
    finally:
        consumer.close()


def publish(
    settings: AbacusSettings,
    records: Iterable[tuple[str, bytes, bytes | None]],
    *,
    timeout_s: float = 120.0,
) -> int:
    """Send (topic, key, value) records in order (None: a tombstone), wait for every ack;
    return how many."""
    servers = settings.broker.servers
    try:
        producer = KafkaProducer(
            **kafka_python_config(settings.broker),
            acks="all",
            linger_ms=20,
            batch_size=512 * 1024,
            max_in_flight_requests_per_connection=1,  # keep per-key order on retries
            client_id=f"{settings.app_id}-roster-importer",
        )
    except KafkaError as exc:
        raise StackError(f"broker {servers} unreachable: {exc}") from exc
    try:
        futures = [producer.send(topic, key=key, value=value) for topic, key, value in records]
        producer.flush(timeout=timeout_s)
        for future in futures:
            if not future.is_done:
                raise StackError(f"publishing roster records to {servers} timed out")
            if future.failed():
                raise future.exception
        return len(futures)
    except KafkaError as exc:
        raise StackError(f"cannot publish roster records to {servers}: {exc}") from exc
    finally:
        producer.close()
