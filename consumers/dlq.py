"""Dead-letter topic I/O: read what was dead-lettered and resubmit it to the events topic."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from abacus.errors import StackError
from abacus.events.dead_letter import REPLAYED_FROM, DeadLetterInfo, read_headers
from abacus.kafka.log_end import true_log_ends
from abacus.kafka_clients import kafka_python_config
from abacus.settings import BrokerSettings

__all__ = ["DeadLetterRecord", "read_dead_letters", "replay", "resolve_pointers"]

_READ_LIMIT_S = 60.0


@dataclass(frozen=True)
class DeadLetterRecord:
    """One record of the dead-letter topic with the headers the ingest agent wrote."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, str]

    @property
    def info(self) -> DeadLetterInfo:
        return read_headers(self.headers)

    @property
    def reason(self) -> str:
        return self.info.reason

    @property
    def failed_at(self) -> str:
        return self.info.failed_at

    @property
    def source_partition(self) -> int | None:
        return self.info.source_partition

    @property
    def source_offset(self) -> int | None:
        return self.info.source_offset

    @property
    def ref(self) -> str:
        return f"{self.topic}:{self.partition}:{self.offset}"


def read_dead_letters(broker: BrokerSettings, topic: str) -> list[DeadLetterRecord]:
    """Every record on the dead-letter topic, oldest first, up to its log end now."""
    bootstrap = broker.servers
    try:
        consumer = KafkaConsumer(
            **kafka_python_config(broker), enable_auto_commit=False, fetch_max_wait_ms=100
        )
    except KafkaError as exc:
        raise StackError(f"broker {bootstrap} unreachable: {exc}") from exc
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not parts:
            raise StackError(f"no topic {topic} on {bootstrap} (is the stack initialised?)")
        ends = true_log_ends(consumer, consumer.end_offsets(parts))
        starts = consumer.beginning_offsets(parts)
        todo = {tp for tp in parts if ends[tp] > starts[tp]}
        out: list[DeadLetterRecord] = []
        consumer.assign(list(todo))
        for tp in todo:
            consumer.seek(tp, starts[tp])
        deadline = time.monotonic() + _READ_LIMIT_S
        while todo and time.monotonic() < deadline:
            for tp, records in consumer.poll(timeout_ms=200).items():
                for rec in records:
                    if rec.offset < ends[tp]:
                        out.append(_record(rec))
                if consumer.position(tp) >= ends[tp]:
                    todo.discard(tp)
        if todo:
            raise StackError(f"timed out reading {topic} (partitions {sorted(todo)})")
        return sorted(out, key=lambda r: (r.partition, r.offset))
    except KafkaError as exc:
        raise StackError(f"cannot read {topic} on {bootstrap}: {exc}") from exc
    finally:
        consumer.close()


def _record(rec: Any) -> DeadLetterRecord:
    headers = {k: v.decode("utf-8", "replace") for k, v in rec.headers or []}
    return DeadLetterRecord(
        rec.topic, rec.partition, rec.offset, rec.key, rec.value or b"", headers
    )


def resolve_pointers(
    broker: BrokerSettings,
    records: list[DeadLetterRecord],
    events_topic: str,
    epoch: str | None,
) -> tuple[list[DeadLetterRecord], list[DeadLetterRecord]]:
    """Fill in the bytes of oversized pointers from their source offset on the events topic.

    Returns (ready to replay, pointers whose source is gone: an older broker epoch or past
    the topic's retention; ClickHouse's ``dead_letters`` table still has their bytes).
    """
    wanted = [
        r
        for r in records
        if r.info.is_pointer and r.info.source_epoch == epoch and r.source_offset is not None
    ]
    found = _read_offsets(broker, events_topic, wanted) if wanted else {}
    ready, gone = [], []
    for record in records:
        if not record.info.is_pointer:  # a pointer (oversized) has no bytes of its own
            ready.append(record)
            continue
        source = found.get((record.source_partition, record.source_offset))
        if source is None:
            gone.append(record)
        else:
            ready.append(replace(record, key=source[0], value=source[1]))
    return ready, gone


def _read_offsets(
    broker: BrokerSettings, topic: str, records: list[DeadLetterRecord]
) -> dict[tuple[int | None, int | None], tuple[bytes | None, bytes]]:
    """(key, value) of the source records the pointers name, read one by one."""
    bootstrap = broker.servers
    try:
        consumer = KafkaConsumer(
            **kafka_python_config(broker),
            enable_auto_commit=False,
            fetch_max_wait_ms=100,
            max_partition_fetch_bytes=64 << 20,
            fetch_max_bytes=64 << 20,
        )
    except KafkaError as exc:
        raise StackError(f"broker {bootstrap} unreachable: {exc}") from exc
    out: dict[tuple[int | None, int | None], tuple[bytes | None, bytes]] = {}
    try:
        for record in records:
            if record.source_partition is None or record.source_offset is None:
                continue
            tp = TopicPartition(topic, record.source_partition)
            consumer.assign([tp])
            consumer.seek(tp, record.source_offset)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                batch = consumer.poll(timeout_ms=500, max_records=1).get(tp, [])
                if batch:
                    if batch[0].offset == record.source_offset:
                        key = (record.source_partition, record.source_offset)
                        out[key] = (batch[0].key, batch[0].value or b"")
                    break
        return out
    except KafkaError as exc:
        raise StackError(f"cannot read {topic} on {bootstrap}: {exc}") from exc
    finally:
        consumer.close()


def replay(
    broker: BrokerSettings, records: Iterable[DeadLetterRecord], events_topic: str
) -> list[DeadLetterRecord]:
    """Resubmit each record's original key and bytes to ``events_topic`` (to the partition
    it came from when that still exists), tagged with REPLAYED_FROM. Returns those sent."""
    bootstrap = broker.servers
    try:
        producer = KafkaProducer(
            **kafka_python_config(broker), acks="all", linger_ms=5, max_request_size=64 << 20
        )
    except KafkaError as exc:
        raise StackError(f"broker {bootstrap} unreachable: {exc}") from exc
    try:
        partitions = producer.partitions_for(events_topic) or set()
        sent = []
        futures = []
        for record in records:
            source = record.source_partition
            futures.append(
                producer.send(
                    events_topic,
                    key=record.key,
                    value=record.value,
                    partition=source if source in partitions else None,
                    headers=[(REPLAYED_FROM, record.ref.encode())],
                )
            )
            sent.append(record)
        producer.flush()
        for future in futures:
            future.get(timeout=30)
        return sent
    except KafkaError as exc:
        raise StackError(f"cannot replay to {events_topic} on {bootstrap}: {exc}") from exc
    finally:
        producer.close()
