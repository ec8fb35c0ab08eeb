"""Dead letters on the topic: headers, size limit and pointer (pure; the one place for them).

The ingest service writes them, the worker republishes them after an embedded restart
(`streams.restore`), `abacus dlq` reads and replays them. A dead letter carries the
original key and bytes and small headers: the reason (`abacus.events.reasons`), where the
record came from (topic, partition, offset, broker epoch) and when it failed. One that
would be too large to deliver (Kafka's default limit is 1 MiB; the bad record itself may
be that large) is replaced by a *pointer*: no value, the same headers with the reason
``oversized`` and the original size, so the stream goes on and the record can still be
found at its source offset.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from abacus.events.reasons import cap

__all__ = [
    "FAILED_AT",
    "OVERSIZED_BYTES",
    "REASON",
    "REPLAYED_FROM",
    "RESTORED_FROM",
    "SOURCE_EPOCH",
    "SOURCE_OFFSET",
    "SOURCE_PARTITION",
    "SOURCE_TOPIC",
    "DeadLetterInfo",
    "OutgoingDeadLetter",
    "dead_letter_headers",
    "dead_letter_record",
    "pointer_to",
    "read_headers",
]

REASON = "abacus.reason"
SOURCE_TOPIC = "abacus.source.topic"
SOURCE_PARTITION = "abacus.source.partition"
SOURCE_OFFSET = "abacus.source.offset"
SOURCE_EPOCH = "abacus.source.epoch"
FAILED_AT = "abacus.failed_at"
# On a pointer: the size of the dead letter it stands for.
OVERSIZED_BYTES = "abacus.oversized.bytes"
# On a record resubmitted by `abacus dlq replay`: "<dlq topic>:<partition>:<offset>".
REPLAYED_FROM = "abacus.replayed_from"
# On a dead letter the worker put back from ClickHouse after an embedded broker restart.
RESTORED_FROM = "abacus.restored_from"
_MAX_POINTER_KEY = 1024
_RECORD_OVERHEAD = 128  # Kafka record framing, generously


def dead_letter_headers(
    topic: str, partition: int, offset: int, reason: str, *, epoch: str, failed_at: str
) -> list[tuple[str, bytes]]:
    """Headers of a dead letter: why (capped), where it came from, when (ISO 8601)."""
    return [
        (REASON, cap(reason).encode()),
        (SOURCE_TOPIC, topic.encode()),
        (SOURCE_PARTITION, str(partition).encode()),
        (SOURCE_OFFSET, str(offset).encode()),
        (SOURCE_EPOCH, epoch.encode()),
        (FAILED_AT, failed_at.encode()),
    ]


@dataclass(frozen=True)
class OutgoingDeadLetter:
    """One record to send to the dead-letter topic."""

    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]

    @property
    def size(self) -> int:
        heads = sum(len(k) + len(v) for k, v in self.headers)
        return len(self.key or b"") + len(self.value) + heads + _RECORD_OVERHEAD

    @property
    def is_pointer(self) -> bool:
        return any(k == OVERSIZED_BYTES for k, _ in self.headers)


def dead_letter_record(
    *,
    key: bytes | None,
    value: bytes | None,
    reason: str,
    topic: str,
    partition: int,
    offset: int,
    epoch: str,
    failed_at: str,
    max_bytes: int,
) -> OutgoingDeadLetter:
    """The record itself when it fits in ``max_bytes``, else its pointer."""
    headers = dead_letter_headers(
        topic, partition, offset, reason, epoch=epoch, failed_at=failed_at
    )
    letter = OutgoingDeadLetter(key, value or b"", headers)
    return letter if letter.size <= max_bytes else pointer_to(letter)


def pointer_to(letter: OutgoingDeadLetter) -> OutgoingDeadLetter:
    """A small stand-in for a dead letter too large to deliver."""
    first = dict(letter.headers)[REASON].decode()
    reason = cap(f"oversized: {letter.size} bytes, over the dead-letter limit (was: {first})")
    headers = [(REASON, reason.encode())]
    headers += [(k, v) for k, v in letter.headers if k != REASON]
    headers.append((OVERSIZED_BYTES, str(letter.size).encode()))
    key = letter.key if letter.key is not None and len(letter.key) <= _MAX_POINTER_KEY else None
    return OutgoingDeadLetter(key, b"", headers)


@dataclass(frozen=True)
class DeadLetterInfo:
    """What the headers of a dead letter say (fields missing or malformed are empty/None)."""

    reason: str
    failed_at: str
    source_partition: int | None
    source_offset: int | None
    source_epoch: str
    is_pointer: bool


def _int(raw: str | None) -> int | None:
    return int(raw) if raw is not None and raw.isdigit() else None


def read_headers(headers: Mapping[str, str]) -> DeadLetterInfo:
    return DeadLetterInfo(
        reason=headers.get(REASON, ""),
        failed_at=headers.get(FAILED_AT, ""),
        source_partition=_int(headers.get(SOURCE_PARTITION)),
        source_offset=_int(headers.get(SOURCE_OFFSET)),
        source_epoch=headers.get(SOURCE_EPOCH, ""),
        is_pointer=OVERSIZED_BYTES in headers,
    )
