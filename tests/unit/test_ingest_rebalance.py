"""On a revoke the ingest service stops handing batches over, waits (bounded) for the
batches in flight to be committed, and abandons the rest; a fake service, no broker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

from aiokafka import TopicPartition

from streams.ingest_rebalance import IngestRebalance


class FakeService:
    """Batches in flight per partition; ``finish`` completes one as the store loop would."""

    def __init__(self, inflight: dict[int, int]) -> None:
        self.inflight = dict(inflight)
        self.batch_done = asyncio.Event()
        self.holding: list[bool] = []
        self.abandoned: list[set[int]] = []
        self.abandoned_batches = 0
        self.held_while_waiting = False

    def in_flight(self, partitions: Iterable[int]) -> set[int]:
        self.held_while_waiting = self.held_while_waiting or bool(self.holding[-1:] == [True])
        return {p for p in partitions if self.inflight.get(p)}

    def hold(self, holding: bool) -> None:
        self.holding.append(holding)

    def abandon(self, partitions: Iterable[int]) -> int:
        parts = set(partitions)
        self.abandoned.append(parts)
        self.abandoned_batches += sum(self.inflight.pop(p, 0) for p in parts)
        return self.abandoned_batches

    async def finish(self, partition: int, after_s: float) -> None:
        await asyncio.sleep(after_s)
        self.inflight[partition] -= 1
        self.batch_done.set()


def tps(*partitions: int) -> set[TopicPartition]:
    return {TopicPartition("events", p) for p in partitions}


async def test_batches_in_flight_are_waited_for_then_nothing_is_abandoned() -> None:
    service = FakeService({0: 1, 1: 2})
    listener = IngestRebalance(service, wait_s=5.0)
    finishing = [
        asyncio.ensure_future(service.finish(0, 0.05)),
        asyncio.ensure_future(service.finish(1, 0.1)),
        asyncio.ensure_future(service.finish(1, 0.15)),
    ]
    started = time.monotonic()
    await listener.on_partitions_revoked(tps(0, 1, 2))
    assert all(f.done() for f in finishing), "returned before the batches were committed"
    assert time.monotonic() - started < 1.0  # ...but as soon as they were
    assert service.abandoned == [{0, 1, 2}]  # the generation moves on in any case
    assert service.abandoned_batches == 0
    assert service.holding == [True, False]
    assert service.held_while_waiting


async def test_a_batch_still_being_stored_at_the_bound_is_abandoned() -> None:
    service = FakeService({3: 1})
    listener = IngestRebalance(service, wait_s=0.2)
    started = time.monotonic()
    await listener.on_partitions_revoked(tps(3))
    assert 0.2 <= time.monotonic() - started < 1.0
    assert service.abandoned == [{3}]
    assert service.abandoned_batches == 1  # given up: not committed, read again by the new owner
    assert service.holding == [True, False]


async def test_nothing_revoked_nothing_done() -> None:
    service = FakeService({0: 1})
    await IngestRebalance(service, wait_s=1.0).on_partitions_revoked(set())
    assert service.holding == []
    assert service.abandoned == []
