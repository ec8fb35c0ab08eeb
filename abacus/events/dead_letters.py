"""What a dead letter looks like on the dead-letter topic: headers, size, pointer (pure).

A dead letter carries the original key and bytes and small headers (the reason, where
the record came from, when it failed). One that would be too large to deliver (Kafka's
default limit is 1 MiB; the bad record itself may be that large) is replaced by a
*pointer*: no value, the same headers with the reason ``oversized`` and the original
size, so the stream goes on and the record can still be found at its source offset.
"""

from __future__ import annotations

from dataclasses import dataclass

from abacus.events.reasons import cap

__all__ = [
    "FAILED_AT",
    "OVERSIZED_BYTES",
    "REASON",
    "SOURCE_EPOCH",
    "SOURCE_OFFSET",
    "SOURCE_PARTITION",
    "SOURCE_TOPIC",
    "DeadLetterRecord",
    "dead_letter_record",
    "pointer_to",
]

REASON = "abacus.reason"
SOURCE_TOPIC = "abacus.source.topic"
SOURCE_PARTITION = "abacus.source.partition"
SOURCE_OFFSET = "abacus.source.offset"
SOURCE_EPOCH = "abacus.source.epoch"
FAILED_AT = "abacus.failed_at"
OVERSIZED_BYTES = "abacus.oversized.bytes"
_MAX_POINTER_KEY = 1024
_RECORD_OVERHEAD = 128  # Kafka record framing, generously


@dataclass(frozen=True)
class DeadLetterRecord:
    """One record to send to the dead-letter topic."""

    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]

    @property
    def size(self) -> int:
        heads = sum(len(k) + len(v) for k, v in self.headers)
        return len(self.key or b"") + len(self.value) + heads + _RECORD_OVERHEAD


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
) -> DeadLetterRecord:
    """The record itself when it fits in ``max_bytes``, else its pointer."""
    headers = [
        (REASON, cap(reason).encode()),
        (SOURCE_TOPIC, topic.encode()),
        (SOURCE_PARTITION, str(partition).encode()),
        (SOURCE_OFFSET, str(offset).encode()),
        (SOURCE_EPOCH, epoch.encode()),
        (FAILED_AT, failed_at.encode()),
    ]
    letter = DeadLetterRecord(key, value or b"", headers)
    return letter if letter.size <= max_bytes else pointer_to(letter)


def pointer_to(letter: DeadLetterRecord) -> DeadLetterRecord:
    """A small stand-in for a dead letter too large to deliver."""
    first = dict(letter.headers)[REASON].decode()
    reason = cap(f"oversized: {letter.size} bytes, over the dead-letter limit (was: {first})")
    headers = [(REASON, reason.encode())]
    headers += [(k, v) for k, v in letter.headers if k != REASON]
    headers.append((OVERSIZED_BYTES, str(letter.size).encode()))
    key = letter.key if letter.key is not None and len(letter.key) <= _MAX_POINTER_KEY else None
    return DeadLetterRecord(key, b"", headers)
