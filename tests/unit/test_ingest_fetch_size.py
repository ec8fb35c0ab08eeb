"""How many records each fetch asks for: a batch stays near its byte bound however much
the client has buffered (aiokafka hands back up to `max_records`, past `fetch_max_bytes`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any
from unittest.mock import AsyncMock, MagicMock

import pytest
from aiokafka import TopicPartition

from abacus.settings import AbacusSettings
from streams.agents.ingest import IngestService, ready_to_hand_over, records_wanted

MB = 1 << 20


@pytest.mark.parametrize(
    ("held", "held_bytes", "record_bytes", "max_records", "wanted"),
    [
        (0, 0, 4096, 20_000, 512),  # SDK batch records: 2 MB of them, not 20k (80 MB)
        (0, 0, 100, 20_000, 20_000),  # single events: the record bound comes first
        (500, 2 * MB - 4096, 4096, 20_000, 1),  # one more record fills the batch
        (500, 2 * MB - 4000, 4096, 20_000, 1),  # part of a record left: still one
        (19_999, 10_000, 100, 20_000, 1),
        (0, 0, 0.0, 20_000, 20_000),  # a fetch of empty values: no division by zero
        (0, 0, 3 * MB, 20_000, 1),  # records larger than a batch: one at a time
    ],
)
def test_a_fetch_asks_for_what_fills_the_batch(
    held: int, held_bytes: int, record_bytes: float, max_records: int, wanted: int
) -> None:
    assert records_wanted(held, held_bytes, record_bytes, max_records, 2 * MB) == wanted


@pytest.mark.parametrize(("held", "held_bytes"), [(20_000, 0), (10, 2 * MB), (10, 3 * MB)])
def test_a_full_batch_asks_for_nothing(held: int, held_bytes: int) -> None:
    # aiokafka refuses max_records=0 (ValueError): the fetcher does not call it then.
    assert records_wanted(held, held_bytes, 4096, 20_000, 2 * MB) == 0


def test_the_batch_stays_within_its_bound_at_the_measured_record_size() -> None:
    """Fetches of 4 KB records until full: the batch ends within one record of 2 MB."""
    held = held_bytes = 0
    while wanted := records_wanted(held, held_bytes, 4096, 20_000, 2 * MB):
        got = min(wanted, 300)  # the client returns no more than it has buffered
        held, held_bytes = held + got, held_bytes + got * 4096
    assert 2 * MB <= held_bytes < 2 * MB + 4096


@pytest.mark.parametrize(
    ("full", "store_idle", "stopping", "caught_up", "free", "ready"),
    [
        (True, False, False, False, 0, True),  # a full batch goes at once
        (False, True, False, False, 0, True),  # the store waits for work
        (False, False, True, False, 0, True),  # stopping: nothing is held back
        (False, False, False, False, 2, False),  # store busy, more records coming: gather
        (False, False, False, True, 1, True),  # read to the end, a process idles: go
        (False, False, False, True, 0, False),  # read to the end, every process busy
        (False, False, False, True, -1, False),  # no processes (batches prepared inline)
    ],
)
def test_records_are_held_only_while_holding_them_gathers_more(
    full: bool, store_idle: bool, stopping: bool, caught_up: bool, free: int, ready: bool
) -> None:
    kw = {"full": full, "store_idle": store_idle, "stopping": stopping, "caught_up": caught_up}
    assert ready_to_hand_over(**kw, free_processes=free) is ready


# --- the fetch loop itself, on a fake consumer ------------------------------------------


class FakeConsumer:
    """Serves ``records`` in order, at most ``buffered`` per call, as aiokafka's getmany."""

    def __init__(self, records: list[SimpleNamespace], buffered: int = 300) -> None:
        self.records, self.buffered = records, buffered
        self.asked: list[int] = []

    async def getmany(self, *, timeout_ms: int, max_records: int) -> dict[Any, list[Any]]:
        if max_records < 1:
            raise ValueError("`max_records` must be a positive Integer")  # as aiokafka
        self.asked.append(max_records)
        take = self.records[: min(max_records, self.buffered)]
        del self.records[: len(take)]
        if not take:
            await asyncio.sleep(timeout_ms / 1000)
            return {}
        return {TopicPartition("events", 0): take}

    def assignment(self) -> set[TopicPartition]:
        return set()  # nothing for the idle commit of skipped offsets to look at


def _service(processes: int) -> IngestService:
    """An ingest service with nothing behind it (fetch and store driven by hand)."""
    return IngestService(
        AbacusSettings(ingest_processes=processes),
        store=MagicMock(),
        districts=SimpleNamespace(late=None),
        metrics=MagicMock(),
        broker_epoch="epoch",
        deny=MagicMock(),
    )


async def _until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_a_full_batch_held_during_a_revoke_is_handed_over_when_the_hold_ends() -> None:
    service = _service(1)
    records = [
        SimpleNamespace(partition=0, offset=i, key=b"s", value=bytes(1000)) for i in range(5000)
    ]
    service.consumer = consumer = FakeConsumer(records)
    handed: list[int] = []

    async def hand_over(batch: list[Any], offsets: dict[Any, int], **_: Any) -> None:
        handed.append(sum(len(r.value) for r in batch))

    service._hand_over = hand_over  # type: ignore[method-assign]
    service.hold(True)  # a revoke waits for the batches in flight
    fetching = asyncio.create_task(IngestService._fetch(service))  # a Service.task
    try:
        await _until(lambda: len(consumer.records) < 5000 - 2 * MB // 1000)
        await asyncio.sleep(0.2)
        assert handed == []  # held, and no more fetched than fills the batch
        assert len(consumer.records) > 5000 - 2 * MB // 1000 - 300
        service.hold(False)
        await _until(lambda: bool(handed))
        assert 2 * MB <= handed[0] < 2 * MB + 1000
    finally:
        service._crashed.set()
        await fetching
    assert min(consumer.asked) >= 1


async def test_the_last_records_go_to_a_free_process_while_the_store_is_busy() -> None:
    """The store has a batch queued; the topic's last 100 records are fetched. They wait
    while both ingest processes are busy, and go as soon as one is free (not once the store
    has taken the queued batch)."""
    service = _service(2)
    records = [
        SimpleNamespace(partition=0, offset=i, key=b"s", value=bytes(1000)) for i in range(100)
    ]
    service.consumer = consumer = FakeConsumer(records)
    service._queue.put_nowait(MagicMock())  # a batch waiting for the store
    service._preparing = 2  # both processes preparing earlier batches
    handed: list[int] = []

    async def hand_over(batch: list[Any], offsets: dict[Any, int], **_: Any) -> None:
        handed.append(len(batch))

    service._hand_over = hand_over  # type: ignore[method-assign]
    fetching = asyncio.create_task(IngestService._fetch(service))
    try:
        await _until(lambda: not consumer.records)
        await asyncio.sleep(0.2)  # fetches come back empty meanwhile
        assert handed == []
        service._preparing = 1  # one process finished its batch
        await _until(lambda: bool(handed))
        assert handed == [100]
        assert service._queue.qsize() == 1  # the store had not taken its batch
    finally:
        service._crashed.set()
        await fetching


async def test_ingest_stays_backlogged_while_a_full_batch_is_on_its_way_to_the_store() -> None:
    """A full batch handed over more than a second ago and not yet stored (a slow machine)
    still holds the rollup service's pass back; once the store has finished with it, and a
    second has passed since, it does not."""
    service = _service(1)
    prepared: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    finished: list[Any] = []

    async def finish(item: Any, batch: Any) -> None:
        finished.append(batch)

    service._finish = finish  # type: ignore[method-assign]
    service._full_at = time.monotonic() - 5  # handed over 5 s ago
    service._full_in_flight = 1
    item = MagicMock(full=True, prepared=prepared)
    service._queue.put_nowait(item)
    service._queue.put_nowait(None)
    storing = asyncio.create_task(IngestService._store(service))  # a Service.task
    await asyncio.sleep(0.05)
    assert service.backlogged()  # still being prepared
    prepared.set_result("batch")
    await storing
    assert finished == ["batch"]
    assert not service.backlogged()


async def test_a_full_batch_handed_over_turns_the_backlog_signal_on_a_partial_one_not() -> None:
    service = _service(1)
    service.preparer = MagicMock(prepare=AsyncMock(return_value="prepared"))
    service.attempts = MagicMock(attempt=lambda partition, start: 1)
    service.districts = SimpleNamespace(zones=dict, late=None)  # type: ignore[assignment]
    records = [SimpleNamespace(partition=0, offset=i, key=b"s", value=b"v") for i in range(3)]
    await service._hand_over(records, {}, full=False)  # type: ignore[arg-type]
    assert not service.backlogged()
    await service._hand_over(records, {}, full=True)  # type: ignore[arg-type]
    assert service.backlogged()
    assert service._full_in_flight == 1  # until the store has finished with it
    assert time.monotonic() - service._full_at < 1  # and for a second after it was handed over
    assert [item.full for item in (service._queue.get_nowait(), service._queue.get_nowait())] == [
        False,
        True,
    ]
