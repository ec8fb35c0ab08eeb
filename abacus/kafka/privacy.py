"""Kafka side of deletions: requests and their statuses, the deny-list topic."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from abacus.errors import StackError
from abacus.kafka.compacted import publish, read_latest
from abacus.kafka.log_end import true_log_ends
from abacus.kafka_clients import kafka_python_config
from abacus.privacy.deny import DenyEntry, DenyList, decode_entry, encode_entry
from abacus.privacy.status import FINAL_STATUSES
from abacus.settings import AbacusSettings

__all__ = [
    "publish_deny",
    "read_deny",
    "read_final_status",
    "send_request",
    "wait_status",
]


def send_request(settings: AbacusSettings, doc: dict[str, Any]) -> None:
    """Put a deletion (or re-enable) request on `privacy-requests`."""
    topic = settings.topics.name(settings.topics.privacy_requests)
    try:
        producer = KafkaProducer(**kafka_python_config(settings.broker), acks="all")
        producer.send(topic, key=str(doc["request_id"]).encode(), value=json.dumps(doc).encode())
        producer.flush(timeout=30)
        producer.close()
    except KafkaError as exc:
        raise StackError(f"broker {settings.broker.servers} unreachable: {exc}") from exc


def wait_status(settings: AbacusSettings, request_id: str, timeout: float) -> dict[str, Any]:
    """Read `privacy-status` from the start until this request's final status arrives."""
    status = _read_status(settings, request_id, timeout, until_end=False)
    if status is None:
        raise StackError(
            f"no final status for {request_id} within {timeout:.0f}s; is the worker running?"
        )
    return status


def read_final_status(settings: AbacusSettings, request_id: str) -> dict[str, Any] | None:
    """The request's last final status already on `privacy-status`, or None."""
    return _read_status(settings, request_id, 30.0, until_end=True)


def _read_status(
    settings: AbacusSettings, request_id: str, timeout: float, *, until_end: bool
) -> dict[str, Any] | None:
    topic = settings.topics.name(settings.topics.privacy_status)
    try:
        consumer = KafkaConsumer(
            **kafka_python_config(settings.broker),
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
    except KafkaError as exc:
        raise StackError(f"broker {settings.broker.servers} unreachable: {exc}") from exc
    try:
        tp = TopicPartition(topic, 0)
        end = true_log_ends(consumer, consumer.end_offsets([tp]))[tp] if until_end else None
        if end == 0:
            return None
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        found: dict[str, Any] | None = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=300).values():
                for record in records:
                    if record.key != request_id.encode():
                        continue
                    status = json.loads(record.value)
                    if status.get("status") in FINAL_STATUSES:
                        found = dict(status)
                        if not until_end:
                            return found
            if end is not None and consumer.position(tp) >= end:
                return found
        return found
    except KafkaError as exc:
        raise StackError(f"cannot read {topic}: {exc}") from exc
    finally:
        consumer.close()


def publish_deny(settings: AbacusSettings, entries: Iterable[DenyEntry]) -> int:
    """Put deny-list entries on the compacted `privacy-deny` topic."""
    topic = settings.topics.name(settings.topics.privacy_deny)
    return publish(settings, [(topic, *encode_entry(e)) for e in entries])


def read_deny(settings: AbacusSettings) -> DenyList:
    """The deny-list as the `privacy-deny` topic has it (readers without the store)."""
    topic = settings.topics.name(settings.topics.privacy_deny)
    latest = read_latest(settings, [topic])[topic]
    entries = (decode_entry(v) for v in latest.values() if v is not None)
    return DenyList(e for e in entries if e is not None)
