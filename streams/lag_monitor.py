"""A worker timer that measures the worker's own consumer groups into Prometheus gauges."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Protocol

import faust

from consumers.lag import LagReader, PartitionLag
from consumers.lag_history import GroupSample, LagHistory
from consumers.lag_status import GroupStatus
from consumers.ops_view import FreshnessWindow

if TYPE_CHECKING:
    from abacus.settings import AbacusSettings
    from streams.metrics import Metrics

__all__ = ["HISTORY_S", "LagMonitor", "history_samples", "register"]

log = logging.getLogger(__name__)

# The history kept per group (the /ops page charts it): one hour at any interval.
HISTORY_S = 3600.0


def history_samples(interval_s: float) -> int:
    """Samples that cover ``HISTORY_S`` at one per ``interval_s`` (and the hour's start)."""
    return math.ceil(HISTORY_S / interval_s) + 1


class Reader(Protocol):
    """What the monitor needs of ``consumers.lag.LagReader``."""

    def snapshot_groups(
        self, groups: Mapping[str, Iterable[str]], *, with_seconds: bool = True
    ) -> dict[str, list[PartitionLag]]: ...

    def members(self, group: str) -> int: ...

    def close(self) -> None: ...


class LagMonitor:
    """Every tick: committed vs log end of the ingest group (on the events topic) and the
    agents' group, kept in a ring buffer; sets lag, member and Burrow-status gauges.

    A failed tick (broker gone, a client bug, anything) is logged, counted in
    ``abacus_lag_monitor_errors_total`` and retried at the next tick on a new connection:
    the monitor never takes the worker down. A measurement still running after
    ``timeout_s`` counts as failed too; later ticks wait for that same measurement (the
    broker clients are not thread-safe) instead of starting another.
    """

    def __init__(
        self,
        settings: AbacusSettings,
        metrics: Metrics,
        connect: Callable[[], Reader] | None = None,
        clock: Callable[[], float] = time.time,
        timeout_s: float | None = None,
    ) -> None:
        events = settings.topics.name(settings.topics.events)
        # The ingest group always reports the events topic, even before its first commit.
        self.groups: dict[str, list[str]] = {
            settings.ingest_group: [events],
            settings.roster_group: [],
            settings.app_id: [],
        }
        self.window_s = settings.lag_window_s
        self.metrics = metrics
        self.history = LagHistory(history_samples(settings.lag_interval_s))
        # The freshness histogram at each tick: /ops shows quantiles of a recent window.
        self.freshness = FreshnessWindow(history_samples(settings.lag_interval_s))
        self._clock = clock
        client_id = f"{settings.ingest_group}-lag"
        self._connect = connect or (lambda: LagReader(settings.broker, client_id))
        self._reader: Reader | None = None
        self._failures = 0
        # Reading log ends waits for a quiet topic for up to 5 s (consumers/lag.py), twice.
        self.timeout_s = timeout_s or max(30.0, 2 * settings.lag_interval_s)
        self._running: asyncio.Future[list[GroupSample]] | None = None
        self.measured = 0  # successful ticks so far: views built from the history cache on it

    def measure(self) -> list[GroupSample]:
        """One look at every group. Blocking broker calls: run it in a thread."""
        if self._reader is None:
            self._reader = self._connect()
        at = self._clock()
        rows = self._reader.snapshot_groups(self.groups)
        return [GroupSample(at, g, self._reader.members(g), rows[g]) for g in self.groups]

    async def tick(self) -> None:
        if self._running is None:
            self._running = asyncio.ensure_future(asyncio.to_thread(self.measure))
        try:
            samples = await asyncio.wait_for(asyncio.shield(self._running), self.timeout_s)
        except TimeoutError:
            self._failed(TimeoutError(f"still measuring after {self.timeout_s:g} s"), close=False)
            return
        except Exception as exc:  # noqa: BLE001 - any failure: log, count, retry next tick
            self._running = None
            self._failed(exc)
            return
        self._running = None
        try:
            for sample in samples:
                self.publish(sample)
        except Exception as exc:  # noqa: BLE001 - a bug in the rules must not stop the timer
            self._failed(exc, close=False)
            return
        if self._failures:
            log.info("consumer lag measured again after %d failed attempt(s)", self._failures)
            self._failures = 0
        at = samples[0].at if samples else self._clock()
        self.freshness.add(at, self.metrics.freshness_buckets())
        self.measured += 1

    def publish(self, sample: GroupSample) -> None:
        self.history.add(sample)
        metrics, group = self.metrics, sample.group
        for row in sample.rows:
            labels = (group, row.topic, str(row.partition))
            metrics.consumer_lag.labels(*labels).set(row.lag)
            if row.lag_seconds is not None:
                metrics.consumer_lag_seconds.labels(*labels).set(row.lag_seconds)
        status, _ = self.history.status(group, self.window_s)
        for each in GroupStatus:
            metrics.consumer_group_status.labels(group, each.value).set(int(each is status))
        metrics.consumer_group_members.labels(group).set(sample.members)

    def _failed(self, exc: Exception, *, close: bool = True) -> None:
        self._failures += 1
        self.metrics.lag_monitor_errors.inc()
        log.warning(
            "consumer lag not measured (%s: %s); retrying in the next interval",
            type(exc).__name__,
            exc,
        )
        if not close:  # the reader is still in use by the running measurement
            return
        reader, self._reader = self._reader, None
        if reader is not None:
            try:
                reader.close()
            except Exception as close_exc:  # noqa: BLE001 - a broken client may fail to close
                log.debug("closing the lag reader failed: %s", close_exc)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None


def register(app: faust.App, settings: AbacusSettings, metrics: Metrics) -> LagMonitor:
    """Measure every ``settings.lag_interval_s``; the worker keeps the returned monitor
    (its history feeds the operator views)."""
    monitor = LagMonitor(settings, metrics)

    @app.timer(settings.lag_interval_s)
    async def measure_lag() -> None:
        await monitor.tick()

    return monitor
