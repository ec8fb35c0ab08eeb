"""A worker timer that measures the worker's own consumer lag into Prometheus gauges."""

from __future__ import annotations

import asyncio
import logging

import faust

from abacus.errors import StackError
from abacus.settings import AbacusSettings
from consumers.lag import LagReader, PartitionLag
from streams.metrics import Metrics

__all__ = ["register"]

log = logging.getLogger(__name__)


def register(app: faust.App, settings: AbacusSettings, metrics: Metrics) -> None:
    """Every ``settings.lag_interval_s``: committed vs log end of the ingest group."""
    group = settings.ingest_group
    events = settings.topics.name(settings.topics.events)
    readers: list[LagReader] = []  # one, made lazily in the worker thread and reused

    def measure() -> list[PartitionLag]:
        # Blocking kafka-python calls: only ever run in a thread (asyncio.to_thread).
        if not readers:
            readers.append(LagReader(settings.broker, client_id=f"{group}-lag"))
        try:
            return readers[0].snapshot(group, [events])
        except StackError:
            readers.pop().close()  # reconnect on the next tick
            raise

    @app.timer(settings.lag_interval_s)
    async def measure_lag() -> None:
        try:
            rows = await asyncio.to_thread(measure)
        except StackError as exc:
            log.warning("consumer lag not measured: %s", exc)
            return
        for row in rows:
            labels = (group, row.topic, str(row.partition))
            metrics.consumer_lag.labels(*labels).set(row.lag)
            if row.lag_seconds is not None:
                metrics.consumer_lag_seconds.labels(*labels).set(row.lag_seconds)
