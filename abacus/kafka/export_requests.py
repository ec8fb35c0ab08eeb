"""Request an export over Kafka and wait for its final status (the CLI's side)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from abacus.errors import StackError
from abacus.export.status import FINAL_STATUSES
from abacus.kafka_clients import kafka_python_config
from abacus.settings import AbacusSettings

__all__ = ["new_request_id", "send_request", "wait_status"]


def new_request_id() -> str:
    return f"exp-{uuid.uuid4().hex[:16]}"


def send_request(settings: AbacusSettings, request: dict[str, Any]) -> None:
    topic = settings.topics.name(settings.topics.export_requests)
    try:
        producer = KafkaProducer(**kafka_python_config(settings.broker), acks="all")
        producer.send(
            topic, key=str(request["request_id"]).encode(), value=json.dumps(request).encode()
        )
        producer.flush(timeout=30)
        producer.close()
    except KafkaError as exc:
        raise StackError(f"broker {settings.broker.servers} unreachable: {exc}") from exc


def wait_status(
    settings: AbacusSettings,
    request_id: str,
    timeout: float,
    *,
    district_id: str | None = None,
    requester: str | None = None,
) -> dict[str, Any]:
    """Read `export-status` from the start until this request's final status arrives.

    A request id belongs to its district and requester: given them, a status about the
    same id from anyone else (e.g. the refusal of someone reusing it) is not ours.
    """
    want = {"district_id": district_id, "requester": requester}
    topic = settings.topics.name(settings.topics.export_status)
    try:
        consumer = KafkaConsumer(
            **kafka_python_config(settings.broker),
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
    except KafkaError as exc:
        raise StackError(f"broker {settings.broker.servers} unreachable: {exc}") from exc
    try:
        consumer.assign([TopicPartition(topic, 0)])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    if record.key != request_id.encode():
                        continue
                    status = json.loads(record.value)
                    if any(v is not None and status.get(k) != v for k, v in want.items()):
                        continue
                    if status.get("status") in FINAL_STATUSES:
                        return dict(status)
        raise StackError(
            f"no final status for {request_id} within {timeout:.0f}s; is the worker running?"
        )
    finally:
        consumer.close()
