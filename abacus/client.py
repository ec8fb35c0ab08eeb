"""The learning app's producer client: encode (Avro or JSON), batch per student, key, send."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

from abacus.errors import AbacusError, InvalidEventError, StackError
from abacus.events.codec import Event, decode_record, encode_batch, encode_event, encode_json
from abacus.kafka_clients import kafka_python_config
from abacus.settings import AbacusSettings

__all__ = ["EventProducer", "read_jsonl"]


def read_jsonl(path: Path) -> list[Event]:
    """Read one event per line, validated against the schema as the worker would."""
    events: list[Event] = []
    with path.open("rb") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                decoded = decode_record(line)
            except InvalidEventError as exc:
                raise AbacusError(f"{path}:{lineno}: {exc.reason}") from exc
            if len(decoded) != 1:
                raise AbacusError(f"{path}:{lineno}: expected one event per line")
            events.append(decoded[0])
    return events


class EventProducer:
    """Send events keyed by student_id: one record per event, or one batch record per student."""

    def __init__(
        self, settings: AbacusSettings, *, wire: str = "avro", linger_ms: int = 20
    ) -> None:
        self.topic = settings.topics.name(settings.topics.events)
        self.wire = wire
        # Next offset per partition after everything this producer delivered, so a caller
        # can wait until a consumer group has read it all.
        self.ends: dict[int, int] = {}
        try:
            self._producer = KafkaProducer(
                **kafka_python_config(settings.broker),
                acks="all",
                linger_ms=linger_ms,
                batch_size=256 * 1024,
                retries=5,
            )
        except KafkaError as exc:
            raise StackError(f"broker {settings.broker.servers} unreachable: {exc}") from exc

    def _encode(self, event: Mapping[str, Any]) -> bytes:
        return encode_json(event) if self.wire == "json" else encode_event(event)

    def send_raw(self, key: bytes | None, value: bytes) -> None:
        future = self._producer.send(self.topic, key=key, value=value)
        future.add_callback(self._delivered)

    def _delivered(self, meta: object) -> None:
        partition, offset = meta.partition, meta.offset  # type: ignore[attr-defined]
        self.ends[partition] = max(self.ends.get(partition, 0), offset + 1)

    def send_all(self, events: Iterable[Mapping[str, Any]]) -> int:
        n = 0
        for event in events:
            self.send_raw(str(event["student_id"]).encode(), self._encode(event))
            n += 1
        self.flush()
        return n

    def send_batches(self, events: Iterable[Mapping[str, Any]], max_batch: int = 100) -> int:
        """Group by student and send up to ``max_batch`` events per record; returns records."""
        by_student: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
        for event in events:
            by_student[str(event["student_id"])].append(event)
        n = 0
        for student, items in by_student.items():
            for start in range(0, len(items), max_batch):
                chunk = items[start : start + max_batch]
                if self.wire == "json":
                    value = json.dumps([json.loads(encode_json(e)) for e in chunk]).encode()
                else:
                    value = encode_batch(chunk)
                self.send_raw(student.encode(), value)
                n += 1
        self.flush()
        return n

    def flush(self) -> None:
        try:
            self._producer.flush(timeout=60)
        except KafkaError as exc:
            raise StackError(f"could not deliver events: {exc}") from exc

    def close(self) -> None:
        self._producer.close(timeout=10)

    def __enter__(self) -> EventProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
