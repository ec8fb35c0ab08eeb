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


def _read_each(
    consumer: KafkaConsumer,
    starts: dict[TopicPartition, int],
    take: Callable[[TopicPartition, list[Any]], bool],
) -> None:
    """Poll each partition from its start offset until ``take(tp, records)`` says it has
    what it needs (it is asked after every poll, with the records the poll returned for
    ``tp``, maybe none), until no partition still wanted has brought anything for
    _QUIET_S, or _READ_LIMIT_S has passed.

    A poll returns one record. kafka-python decodes a fetched batch lazily, record by
    record, and a broker returns whole batches (one producer batch can hold thousands of
    records): draining every poll decoded all of them, ~0.7 s of CPU a lag tick inside the
    worker while the ingest group lagged (300k records pre-loaded; the lag tick ran with
    the GIL and took ingest's single-record rate down ~12%, alternated runs). Now a
    partition's records are decoded only up to its first at or after the start.

    A partition that is done is dropped from the assignment, not paused: what was fetched
    for it is then thrown away undecoded. kafka-python parks a paused partition's fetched
    records and fetches that partition again only once they are handed back, one
    partition per poll, so the next call on the same consumer missed partitions for its
    whole quiet window (measured: a log end read after `first_records` came back short on
    3 of 4 partitions, every time). Reassigning keeps the others' positions.
    """
    pending = set(starts)
    consumer.assign(list(pending))
    for tp, offset in starts.items():
        consumer.seek(tp, offset)
    hard_stop = time.monotonic() + _READ_LIMIT_S
    quiet_until = time.monotonic() + _QUIET_S
    try:
        while pending and time.monotonic() < min(quiet_until, hard_stop):
            polled = consumer.poll(timeout_ms=100, max_records=1)
            done = {tp for tp in pending if take(tp, polled.get(tp, []))}
            if done:
                pending -= done
                consumer.assign(list(pending))
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
    single record then reports 11). So we fetch from ``reported - 1`` (inside or at the
    start of the last batch): the fetch response's high watermark is the real end (Tansu
    reports that one right, measured), and so is max(offset) + 1 of what it returned. On a
    broker without the quirk this reads one record and agrees with what was reported.

    One fetch per partition is enough, and the read stops once every partition has had
    its own. Reading on until the topic went quiet (as this did once) read everything
    produced meanwhile, for up to 5 s per call while events kept arriving: inside the
    worker, every lag tick decoded the stream a second time. A partition whose fetch says
    nothing (no high watermark, no records) is read until quiet, and then the reported end
    stands.
    """
    ends = dict(reported)

    def take(tp: TopicPartition, records: list[Any]) -> bool:
        high = consumer.highwater(tp)  # known once this partition's fetch was read
        seen = [record.offset + 1 for record in records]
        if high is None and not seen:
            return False
        ends[tp] = max([ends[tp], *seen, *([high] if high is not None else [])])
        return True

    starts = {tp: max(0, end - 1) for tp, end in reported.items() if end > 0}
    if starts:
        _read_each(consumer, starts, take)
    return ends
