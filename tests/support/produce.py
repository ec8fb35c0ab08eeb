"""Producing test events and waiting for a worker to have consumed them."""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from abacus.events.codec import encode_batch, encode_event
from tests.support.stack import Stack, wait_until


def produce_events(
    stack: Stack,
    events: list[dict[str, Any]],
    *,
    batch_share: float = 0.0,
    seed: int = 1,
) -> dict[int, int]:
    """Send events keyed by student (a share of them as per-student batch records of up to
    20 events) in the given order; return the next offset per partition after the last
    record sent (what a consumer group must reach to have read everything)."""
    rng = random.Random(seed)
    producer = KafkaProducer(
        bootstrap_servers=stack.bootstrap, acks="all", linger_ms=10, batch_size=512 * 1024
    )
    topic = stack.topic("events")
    futures = []
    pending: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        sid = event["student_id"]
        if rng.random() < batch_share:
            pending[sid].append(event)
            if len(pending[sid]) >= 20:
                futures.append(
                    producer.send(topic, key=sid.encode(), value=encode_batch(pending.pop(sid)))
                )
        else:
            futures.append(producer.send(topic, key=sid.encode(), value=encode_event(event)))
    for sid, items in pending.items():
        futures.append(producer.send(topic, key=sid.encode(), value=encode_batch(items)))
    producer.flush()
    ends: dict[int, int] = {}
    for future in futures:
        meta = future.get(timeout=30)
        ends[meta.partition] = max(ends.get(meta.partition, 0), meta.offset + 1)
    producer.close()
    return ends


def produce_records(stack: Stack, records: list[tuple[bytes | None, bytes]]) -> list[int]:
    """Send records to partition 0 of the events topic in order; return their offsets.
    Records up to 8 MiB go through (hostile tests send some over 1 MiB)."""
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


def read_dead_letters(stack: Stack, expected: int, timeout: float = 60) -> list[dict[str, Any]]:
    """At least ``expected`` dead letters from the start of the topic, oldest first, each as
    {"key", "value", header: value, …}."""
    consumer = KafkaConsumer(bootstrap_servers=stack.bootstrap, fetch_max_bytes=16 << 20)
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


def committed_offsets(stack: Stack) -> dict[int, int]:
    admin = KafkaAdminClient(bootstrap_servers=stack.bootstrap)
    try:
        group = stack.settings.ingest_group
        offsets = admin.list_group_offsets({group: None}).get(group, {})
    finally:
        admin.close()
    topic = stack.topic("events")
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}


def wait_consumed(stack: Stack, ends: dict[int, int], timeout: float = 300) -> None:
    """Until the worker's group has committed every produced offset."""

    def done() -> bool:
        committed = committed_offsets(stack)
        return all(committed.get(p, 0) >= end for p, end in ends.items())

    wait_until(done, timeout, f"group to commit {ends}", every=0.5)
