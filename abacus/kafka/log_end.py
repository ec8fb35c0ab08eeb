"""The real end of a Kafka log, also on the local Tansu broker (whose reported end lags).

Tansu quirk (measured; docs/architecture.md): ListOffsets(latest), and so
`KafkaConsumer.end_offsets`, returns the LAST BATCH's base offset + 1. Every reader that
needs "everything up to the end" (lag, dead letters, compacted roster topics) goes through
`true_log_ends` here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kafka import KafkaConsumer, TopicPartition

__all__ = ["first_records", "true_log_ends"]

_QUIET_S = 0.3  # no more records for this long = we have read to the end
_READ_LIMIT_S = 5.0  # never read longer than this (a producer may never go quiet)
_DRAIN_ALL = 1 << 30  # poll(max_records=...): everything fetched, whole batches


def _read_each(
    consumer: KafkaConsumer,
    starts: dict[TopicPartition, int],
    take: Callable[[TopicPartition, list[Any]], bool],
    max_records: int,
) -> None:
    """Poll each partition from its start offset until ``take(tp, records)`` says it has
    what it needs (the partition is then paused: nothing more of it is fetched or
    decoded), nothing arrives for _QUIET_S, or _READ_LIMIT_S has passed."""
    pending = set(starts)
    consumer.assign(list(pending))
    for tp, offset in starts.items():
        consumer.seek(tp, offset)
    hard_stop = time.monotonic() + _READ_LIMIT_S
    quiet_until = time.monotonic() + _QUIET_S
    try:
        while pending and time.monotonic() < min(quiet_until, hard_stop):
            polled = consumer.poll(timeout_ms=100, max_records=max_records)
            for tp, records in polled.items():
                if tp in pending and take(tp, records):
                    pending.discard(tp)
                    consumer.pause(tp)
            if polled:
                quiet_until = time.monotonic() + _QUIET_S
    finally:
        consumer.resume(*consumer.paused())
        consumer.assign([])


def first_records(
    consumer: KafkaConsumer, starts: dict[TopicPartition, int]
) -> dict[TopicPartition, Any]:
    """The first record at or after each partition's start offset (a partition with none
    there, or compacted away and nothing after it, is left out). Records are taken one at
    a time, and kafka-python decodes a fetched batch lazily, so this decodes a handful of
    records, not the megabyte a fetch brings (it runs inside the worker on every lag
    tick, while the group lags)."""
    found: dict[TopicPartition, Any] = {}

    def take(tp: TopicPartition, records: list[Any]) -> bool:
        for record in records:
            if record.offset >= starts[tp]:
                found[tp] = record
                return True
        return False

    _read_each(consumer, starts, take, max_records=1)
    return found


def true_log_ends(
    consumer: KafkaConsumer, reported: dict[TopicPartition, int]
) -> dict[TopicPartition, int]:
    """The real next offset of each partition, given what ListOffsets(latest) reported.

    Tansu quirk (measured): ListOffsets(latest) / ``end_offsets`` returns the LAST BATCH's
    base offset + 1, so 10 records produced in one batch report an end of 1 (one more
    single record then reports 11). So we read from ``reported - 1`` (inside or at the
    start of the last batch) and take max(offset) + 1. On a broker without the quirk this
    reads one record and agrees with what was reported.

    A fetch returns whole batches and one poll here drains everything fetched, so the first
    records of a partition include the whole batch that was last when ``reported`` was
    read: that partition is then paused, and its end is known. Reading on until the topic
    went quiet (as this did before) read everything produced meanwhile, for up to 5 s per
    call while events kept arriving: inside the worker, every lag tick decoded the stream a
    second time and held the GIL for a quarter of the worker's time. Compacted-away or
    marker offsets return nothing: such a partition is read until quiet, and then the
    reported end stands.
    """
    ends = dict(reported)

    def take(tp: TopicPartition, records: list[Any]) -> bool:
        ends[tp] = max([ends[tp], *(record.offset + 1 for record in records)])
        return True

    starts = {tp: max(0, end - 1) for tp, end in reported.items() if end > 0}
    if starts:
        _read_each(consumer, starts, take, max_records=_DRAIN_ALL)
    return ends
