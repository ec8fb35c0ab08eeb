"""Dead letters: the headers the ingest service writes and `abacus dlq` reads (one place)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = [
    "FAILED_AT",
    "REASON",
    "REPLAYED_FROM",
    "SOURCE_OFFSET",
    "SOURCE_PARTITION",
    "SOURCE_TOPIC",
    "DeadLetterInfo",
    "dead_letter_headers",
    "read_headers",
]

REASON = "abacus.reason"
SOURCE_TOPIC = "abacus.source.topic"
SOURCE_PARTITION = "abacus.source.partition"
SOURCE_OFFSET = "abacus.source.offset"
FAILED_AT = "abacus.failed_at"
# On a record resubmitted by `abacus dlq replay`: "<dlq topic>:<partition>:<offset>".
REPLAYED_FROM = "abacus.replayed_from"


def dead_letter_headers(
    topic: str, partition: int, offset: int, reason: str, failed_at: datetime | None = None
) -> list[tuple[str, bytes]]:
    """Headers of a dead letter: why, where it came from, when."""
    at = failed_at or datetime.now(UTC)
    return [
        (REASON, reason.encode()),
        (SOURCE_TOPIC, topic.encode()),
        (SOURCE_PARTITION, str(partition).encode()),
        (SOURCE_OFFSET, str(offset).encode()),
        (FAILED_AT, at.isoformat().encode()),
    ]


@dataclass(frozen=True)
class DeadLetterInfo:
    """What the headers of a dead letter say (fields missing or malformed are empty/None)."""

    reason: str
    failed_at: str
    source_partition: int | None
    source_offset: int | None


def _int(raw: str | None) -> int | None:
    return int(raw) if raw is not None and raw.isdigit() else None


def read_headers(headers: Mapping[str, str]) -> DeadLetterInfo:
    return DeadLetterInfo(
        reason=headers.get(REASON, ""),
        failed_at=headers.get(FAILED_AT, ""),
        source_partition=_int(headers.get(SOURCE_PARTITION)),
        source_offset=_int(headers.get(SOURCE_OFFSET)),
    )
