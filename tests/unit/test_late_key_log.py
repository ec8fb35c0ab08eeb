"""Ingest's late rollup keys: written before the facts, rebuilt only once stored."""

from __future__ import annotations

from datetime import date
from typing import Any

from streams.rollups import LateKeyLog

KEY = ("maple", "s1", date(2026, 3, 2), "")


class FakeStore:
    def __init__(self) -> None:
        self.written: list[tuple[int, list[Any]]] = []

    async def awrite_dirty(self, seq: int, keys: list[Any]) -> None:
        self.written.append((seq, list(keys)))


async def test_a_batch_in_flight_holds_the_safe_point_before_it() -> None:
    store = FakeStore()
    late = LateKeyLog(store)  # type: ignore[arg-type]
    late.load(100)  # the last sequence number a previous run wrote
    assert late.safe_point() == 100  # after a restart: everything written is stored
    assert await late.mark([]) is None  # today's facts only: nothing written
    first = await late.mark([KEY])
    second = await late.mark([KEY])
    assert first is not None
    assert second is not None
    assert 100 < first < second
    assert [seq for seq, _ in store.written] == [first, second]
    assert late.safe_point() == first - 1  # neither batch's facts stored yet
    late.stored(second)
    assert late.safe_point() == first - 1  # the older one still holds it
    late.stored(first)
    assert late.safe_point() == second == late.last


async def test_numbers_keep_growing_even_when_the_clock_goes_back() -> None:
    late = LateKeyLog(FakeStore())  # type: ignore[arg-type]
    late.load(2**62)  # written by a run whose clock was far ahead
    seq = late.begin()
    assert seq == 2**62 + 1


async def test_a_disabled_log_writes_nothing() -> None:
    store = FakeStore()
    late = LateKeyLog(store, enabled=False)  # type: ignore[arg-type]
    assert await late.mark([KEY]) is None
    assert late.begin() is None
    assert store.written == []
