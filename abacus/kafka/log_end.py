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
) -> None:
    """Poll each partition from its start offset until ``take(tp, records)`` says it has
    what it needs, until no partition still wanted has brought anything for _QUIET_S, or
    _READ_LIMIT_S has passed. Every poll drains everything fetched (whole batches).

    No partition is paused once done: kafka-python parks what it fetched for a paused
    partition, and does not fetch that partition again until the parked records are handed
    back one partition per poll, so the next call on the same consumer missed partitions
    for its whole quiet window (measured: a log end read after `first_records` came back
    short on 3 of 4 partitions, every time). Draining everything leaves nothing half-read.
    """
    pending = set(starts)
    consumer.assign(list(pending))
    for tp, offset in starts.items():
        consumer.seek(tp, offset)
    hard_stop = time.monotonic() + _READ_LIMIT_S
    quiet_until = time.monotonic() + _QUIET_S
    try:
        while pending and time.monotonic() < min(quiet_until, hard_stop):
            polled = consumer.poll(timeout_ms=100, max_records=_DRAIN_ALL)
            for tp, records in polled.items():
                if tp in pending and take(tp, records):
                    pending.discard(tp)
                    quiet_until = time.monotonic() + _QUIET_S
    finally:
        consumer.assign([])


def first_records(
    consumer: KafkaConsumer, starts: dict[TopicPartition, int]
) -> dict[TopicPartition, Any]:
    """The first record at or after each partition's start offset (a partition with none
    there, or compacted away and nothing after it, is left out). It stops as soon as every
    partition has one: it runs inside the worker on every lag tick while the group lags,
    and polling on until the topic went quiet, checking every record read so far after
    each poll, cost the worker a quarter of its time (py-spy)."""
    found: dict[TopicPartition, Any] = {}

    def take(tp: TopicPartition, records: list[Any]) -> bool:
        for record in records:
            if record.offset >= starts[tp]:
                found[tp] = record
                return True
        return False

    _read_each(consumer, starts, take)
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
    read: its end is then known, and the read stops once every partition's is. Reading on
    until the topic went quiet (as this did before) read everything produced meanwhile, for
    up to 5 s per call while events kept arriving: inside the worker, every lag tick decoded
    the stream a second time. Compacted-away or marker offsets return nothing: such a
    partition is read until quiet, and then the reported end stands.
    """
    ends = dict(reported)

    def take(tp: TopicPartition, records: list[Any]) -> bool:
        ends[tp] = max([ends[tp], *(record.offset + 1 for record in records)])
        return True

    starts = {tp: max(0, end - 1) for tp, end in reported.items() if end > 0}
    if starts:
        _read_each(consumer, starts, take)
    return ends
