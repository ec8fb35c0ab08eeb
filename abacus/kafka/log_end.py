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

__all__ = ["read_until_quiet", "true_log_ends"]

_QUIET_S = 0.3  # no more records for this long = we have read to the end
_READ_LIMIT_S = 5.0  # never read longer than this (a producer may never go quiet)
_DRAIN_ALL = 1 << 30  # poll(max_records=...): everything fetched, whole batches


def read_until_quiet(
    consumer: KafkaConsumer, done: Callable[[list[Any]], bool] | None = None
) -> list[Any]:
    """Poll the assigned partitions until nothing arrives for _QUIET_S (or ``done(records)``)."""
    records: list[Any] = []
    hard_stop = time.monotonic() + _READ_LIMIT_S
    quiet_until = time.monotonic() + _QUIET_S
    while time.monotonic() < min(quiet_until, hard_stop):
        polled = consumer.poll(timeout_ms=100)
        for batch in polled.values():
            records.extend(batch)
        if polled:
            quiet_until = time.monotonic() + _QUIET_S
        if done is not None and done(records):
            break
    return records


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
    pending = {tp for tp, end in reported.items() if end > 0}
    if not pending:
        return ends
    consumer.assign(list(pending))
    for tp in pending:
        consumer.seek(tp, max(0, ends[tp] - 1))
    hard_stop = time.monotonic() + _READ_LIMIT_S
    quiet_until = time.monotonic() + _QUIET_S
    while pending and time.monotonic() < min(quiet_until, hard_stop):
        polled = consumer.poll(timeout_ms=100, max_records=_DRAIN_ALL)
        for tp, records in polled.items():
            ends[tp] = max([ends[tp], *(record.offset + 1 for record in records)])
            if tp in pending:
                pending.discard(tp)
                consumer.pause(tp)
                quiet_until = time.monotonic() + _QUIET_S
    consumer.resume(*consumer.paused())
    consumer.assign([])
    return ends
