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

from abacus.errors import StackError
from abacus.kafka.compacted import publish, read_latest
from abacus.settings import AbacusSettings

__all__ = ["MetaRecords", "ensure_epoch", "mark_restored", "read_meta", "wait_restored"]

_EPOCH = b"epoch:"
_RESTORED = b"restored:"


class MetaRecords:
    """The meta topic's records, oldest key first (keys are never rewritten)."""

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
    """Every key of the meta topic (created by `ensure_topics`) in the order first written."""
    topic = settings.topics.name(settings.topics.meta)
    latest = read_latest(settings, [topic], timeout_s=timeout_s)[topic]
    return MetaRecords([(key, value or b"") for key, value in latest.items()])


def _send(settings: AbacusSettings, key: bytes, doc: dict[str, str]) -> None:
    topic = settings.topics.name(settings.topics.meta)
    publish(settings, [(topic, key, json.dumps(doc).encode())], timeout_s=30)


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
