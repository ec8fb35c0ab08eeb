"""The broker epoch: which incarnation of the Kafka log an offset belongs to.

The embedded broker keeps nothing across a restart, so its offsets start at 0 again; an
offset alone no longer says which record it was. Each new log (a new embedded broker, or
a new topic set on a Kafka cluster) gets a random epoch id, kept on the small compacted
``abacus-meta`` topic. Stored events, dead letters and export manifests carry it next to
partition and offset. The first ``epoch:`` record on the topic wins, so workers racing to
create one agree.

The same topic says when the worker has restored the compacted roster topics and the
dead letters from ClickHouse for this epoch (``restored:<epoch>``); the roster importer
waits for that before it reads the roster topics (`wait_restored`).
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from abacus.errors import StackError
from abacus.settings import AbacusSettings

__all__ = ["MetaRecords", "ensure_epoch", "mark_restored", "read_meta", "wait_restored"]

_EPOCH = b"epoch:"
_RESTORED = b"restored:"


class MetaRecords:
    """The meta topic's records, oldest first."""

    def __init__(self, records: list[tuple[bytes, bytes]]) -> None:
        self.records = records

    @property
    def epoch(self) -> str | None:
        """The first epoch ever written to this log, or None."""
        for key, _ in self.records:
            if key.startswith(_EPOCH):
                return key[len(_EPOCH) :].decode()
        return None

    def restored(self, epoch: str) -> bool:
        return any(key == _RESTORED + epoch.encode() for key, _ in self.records)


def read_meta(settings: AbacusSettings, *, timeout_s: float = 30.0) -> MetaRecords:
    """Every record of the meta topic (created by `ensure_topics`), oldest first."""
    servers = settings.broker.servers
    topic = settings.topics.name(settings.topics.meta)
    try:
        consumer = KafkaConsumer(
            bootstrap_servers=servers,
            enable_auto_commit=False,
            fetch_max_wait_ms=100,
            client_id=f"{settings.app_id}-meta",
        )
    except KafkaError as exc:
        raise StackError(f"broker {servers} unreachable: {exc}") from exc
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        # Meta records are sent one by one, so the reported end is exact even on Tansu
        # (whose ListOffsets returns the last batch's base offset + 1).
        end = consumer.end_offsets([tp])[tp]
        out: list[tuple[bytes, bytes]] = []
        deadline = time.monotonic() + timeout_s
        while consumer.position(tp) < end:
            if time.monotonic() > deadline:
                raise StackError(f"reading {topic} from {servers} timed out")
            for records in consumer.poll(timeout_ms=200).values():
                out += [(r.key or b"", r.value or b"") for r in records]
        return MetaRecords(out)
    except KafkaError as exc:
        raise StackError(f"cannot read {topic} from {servers}: {exc}") from exc
    finally:
        consumer.close()


def _send(settings: AbacusSettings, key: bytes, doc: dict[str, str]) -> None:
    servers = settings.broker.servers
    topic = settings.topics.name(settings.topics.meta)
    try:
        producer = KafkaProducer(bootstrap_servers=servers, acks="all", linger_ms=0)
    except KafkaError as exc:
        raise StackError(f"broker {servers} unreachable: {exc}") from exc
    try:
        producer.send(topic, key=key, value=json.dumps(doc).encode()).get(timeout=30)
    except KafkaError as exc:
        raise StackError(f"cannot write {topic} on {servers}: {exc}") from exc
    finally:
        producer.close()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def ensure_epoch(settings: AbacusSettings) -> tuple[str, MetaRecords]:
    """This log's epoch (a new one is written when the meta topic has none yet), and the
    meta records as read."""
    meta = read_meta(settings)
    if meta.epoch is not None:
        return meta.epoch, meta
    new = uuid.uuid4().hex[:12]
    _send(settings, _EPOCH + new.encode(), {"epoch": new, "created_at": _now()})
    meta = read_meta(settings)
    assert meta.epoch is not None  # ours, or one written first by a racing worker
    return meta.epoch, meta


def mark_restored(settings: AbacusSettings, epoch: str) -> None:
    """Say that the compacted topics and dead letters of this epoch are restored."""
    _send(settings, _RESTORED + epoch.encode(), {"epoch": epoch, "restored_at": _now()})


def wait_restored(settings: AbacusSettings, *, timeout_s: float = 120.0) -> None:
    """Return once the worker has restored this epoch's topics from ClickHouse.

    A log without an epoch has had no worker yet: nothing to wait for.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        meta = read_meta(settings)
        if meta.epoch is None or meta.restored(meta.epoch):
            return
        if time.monotonic() > deadline:
            raise StackError(
                "the worker has not finished restoring the roster topics from ClickHouse"
                f" after {timeout_s:.0f}s; is it running? (`abacus up`)"
            )
        time.sleep(0.5)
