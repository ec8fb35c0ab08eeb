"""The worker's lag monitor: gauges, Burrow status over its ring buffer, and errors that
are logged and retried instead of taking the worker down (a fake reader, no sockets)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from abacus.settings import AbacusSettings
from consumers.lag import PartitionLag
from consumers.lag_history import GroupSample, LagHistory
from streams.lag_monitor import LagMonitor, history_samples
from streams.metrics import Metrics

INGEST, AGENTS, EVENTS = "abacus-ingest", "abacus", "events"


class FakeReader:
    """Serves scripted (committed, log_end) per tick, or raises what it is told to."""

    def __init__(self, script: list[dict[int, tuple[int, int]] | BaseException]) -> None:
        self.script = script
        self.closed = False

    def snapshot_groups(
        self, groups: Mapping[str, Iterable[str]], *, with_seconds: bool = True
    ) -> dict[str, list[PartitionLag]]:
        step = self.script.pop(0)
        if isinstance(step, BaseException):
            raise step
        rows = [
            PartitionLag(INGEST, EVENTS, p, c, e, 0, float(e - c)) for p, (c, e) in step.items()
        ]
        return {**{group: [] for group in groups}, INGEST: rows}

    def members(self, group: str) -> int:
        return 1

    def close(self) -> None:
        self.closed = True


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        self.now += 5
        return self.now


def make_monitor(
    readers: list[FakeReader], window_s: float = 60, timeout_s: float | None = None
) -> tuple[LagMonitor, Metrics, list[FakeReader]]:
    settings = AbacusSettings(app_id="abacus", lag_window_s=window_s)
    metrics = Metrics()
    made: list[FakeReader] = []

    def connect() -> FakeReader:
        made.append(readers.pop(0))
        return made[-1]

    monitor = LagMonitor(settings, metrics, connect=connect, clock=Clock(), timeout_s=timeout_s)
    return monitor, metrics, made


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def status_of(metrics: Metrics, group: str) -> list[str]:
    return [
        s
        for s in ("ok", "lagging", "rewind", "stalled", "stopped")
        if value(metrics, "abacus_consumer_group_status", group=group, status=s) == 1
    ]


async def test_gauges_and_status_follow_the_samples() -> None:
    reader = FakeReader(
        [{0: (10, 10), 1: (5, 5)}, {0: (10, 40), 1: (5, 9)}, {0: (10, 90), 1: (9, 9)}]
    )
    monitor, metrics, _ = make_monitor([reader], window_s=8)  # the last two samples
    await monitor.tick()
    labels = {"group": INGEST, "topic": EVENTS, "partition": "0"}
    assert value(metrics, "abacus_consumer_lag_records", **labels) == 0
    assert status_of(metrics, INGEST) == ["ok"]
    assert status_of(metrics, AGENTS) == ["ok"]  # no partitions committed yet
    assert status_of(metrics, "abacus-roster") == ["ok"]  # the roster consumer's group
    assert value(metrics, "abacus_consumer_group_members", group=INGEST) == 1
    await monitor.tick()
    assert status_of(metrics, INGEST) == ["ok"]  # lag 0 in the window (first sample)
    await monitor.tick()
    assert value(metrics, "abacus_consumer_lag_records", **labels) == 80
    assert value(metrics, "abacus_consumer_lag_seconds", **labels) == 80
    assert status_of(metrics, INGEST) == ["stalled"]  # partition 0: lag, commit frozen
    assert len(monitor.history.samples(INGEST)) == 3


async def test_a_rewind_shows_as_its_own_status() -> None:
    reader = FakeReader([{0: (50, 60)}, {0: (20, 60)}])
    monitor, metrics, _ = make_monitor([reader])
    await monitor.tick()
    await monitor.tick()
    assert status_of(metrics, INGEST) == ["rewind"]


@pytest.mark.parametrize(
    "error",
    [RuntimeError("client bug"), ValueError("15 is not a valid ACLOperation"), OSError("reset")],
)
async def test_any_error_is_logged_counted_and_retried_on_a_new_reader(
    error: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    first = FakeReader([{0: (5, 5)}, error])
    second = FakeReader([{0: (7, 9)}])
    monitor, metrics, made = make_monitor([first, second])
    await monitor.tick()
    with caplog.at_level(logging.WARNING, logger="streams.lag_monitor"):
        await monitor.tick()  # must not raise
    assert value(metrics, "abacus_lag_monitor_errors_total") == 1
    assert type(error).__name__ in caplog.text
    assert "retrying" in caplog.text
    assert first.closed
    await monitor.tick()
    assert made == [first, second]
    labels = {"group": INGEST, "topic": EVENTS, "partition": "0"}
    assert value(metrics, "abacus_consumer_lag_records", **labels) == 2
    assert value(metrics, "abacus_lag_monitor_errors_total") == 1


async def test_a_failing_connect_is_retried_too() -> None:
    monitor, metrics, _ = make_monitor([])  # connect() itself raises (IndexError)
    await monitor.tick()
    await monitor.tick()
    assert value(metrics, "abacus_lag_monitor_errors_total") == 2


class BlockingReader(FakeReader):
    """Hangs in its first snapshot until released (a broker that stopped answering)."""

    def __init__(self) -> None:
        super().__init__([{0: (3, 8)}])
        self.release = threading.Event()
        self.calls = 0

    def snapshot_groups(
        self, groups: Mapping[str, Iterable[str]], *, with_seconds: bool = True
    ) -> dict[str, list[PartitionLag]]:
        self.calls += 1
        assert self.release.wait(10)
        return super().snapshot_groups(groups, with_seconds=with_seconds)


async def test_a_hung_measurement_counts_as_failed_and_is_never_run_twice_at_once() -> None:
    reader = BlockingReader()
    monitor, metrics, _ = make_monitor([reader], timeout_s=0.05)
    try:
        await monitor.tick()
        await monitor.tick()
        assert value(metrics, "abacus_lag_monitor_errors_total") == 2
        assert reader.calls == 1  # the second tick waited for the same measurement
        assert not reader.closed  # still in use by that measurement
    finally:
        reader.release.set()
    monitor.timeout_s = 10  # the released measurement now completes
    await monitor.tick()
    labels = {"group": INGEST, "topic": EVENTS, "partition": "0"}
    assert value(metrics, "abacus_consumer_lag_records", **labels) == 5
    assert value(metrics, "abacus_lag_monitor_errors_total") == 2
    assert reader.calls == 1


def test_the_history_is_a_bounded_ring_per_group() -> None:
    history = LagHistory(max_samples=3)
    for i in range(5):
        history.add(GroupSample(float(i), "g", 1, []))
    history.add(GroupSample(9.0, "h", 0, []))
    assert [s.at for s in history.samples("g")] == [2.0, 3.0, 4.0]
    assert [s.at for s in history.samples("g", since=3.0)] == [3.0, 4.0]
    assert history.groups() == ["g", "h"]
    assert history.latest("nobody") is None
    # One hour at any interval, the hour's first sample included.
    assert (history_samples(5.0), history_samples(1.0), history_samples(7.0)) == (721, 3601, 516)
    with pytest.raises(ValueError):
        LagHistory(0)


async def test_an_error_while_publishing_a_sample_is_logged_and_counted_too(
    caplog: pytest.LogCaptureFixture,
) -> None:
    monitor, metrics, _ = make_monitor([FakeReader([{0: (5, 5)}, {0: (6, 9)}])])

    def broken(group: str, window_s: float) -> Any:
        raise KeyError("a bug in the status rules")

    real = monitor.history.status
    monitor.history.status = broken  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="streams.lag_monitor"):
        await monitor.tick()  # must not raise (the timer would die with it)
    assert value(metrics, "abacus_lag_monitor_errors_total") == 1
    assert "KeyError" in caplog.text
    monitor.history.status = real  # type: ignore[method-assign]
    await monitor.tick()
    labels = {"group": INGEST, "topic": EVENTS, "partition": "0"}
    assert value(metrics, "abacus_consumer_lag_records", **labels) == 3
