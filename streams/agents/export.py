"""The export agent: `export-requests` → the export consumer, one request at a time, each
record acked only once its final status is on `export-status`.

Faust acks a record when the agent moves past it, also when the agent raises (the stream
is closed and its `finally` acks): a request whose export broke would be committed while
its status said `progress` forever. So the agent reads a no-ack stream and acks by hand
after `ExportConsumer.handle` has published `completed` or `failed`. A worker that dies
mid-export never acked the record: it is delivered again after the restart, matches its
claim and runs again. One that kills the worker every time it runs (out of memory, a
crash in the engine) is counted per record like a poison ingest batch
(`streams/attempts.py`); past `ABACUS_POISON_ATTEMPTS` it ends `failed` without running.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Mapping
from functools import partial

import faust
from aiokafka.errors import KafkaError

from abacus.district import DistrictConfig
from abacus.errors import StackError
from abacus.export import status
from abacus.mail import send_link_mail
from abacus.settings import AbacusSettings
from abacus.store.store import Store
from consumers.export import ExportConsumer, ExportOutcome, StatusHook
from streams.attempts import AttemptLog
from streams.metrics import Metrics

__all__ = ["ExportRequests", "register"]

log = logging.getLogger(__name__)


class ExportRequests:
    """What the agent does with one record: the crash brake, the flow, the counters."""

    def __init__(
        self, consumer: ExportConsumer, metrics: Metrics, attempts: AttemptLog, limit: int
    ) -> None:
        self.consumer = consumer
        self.metrics = metrics
        self.attempts = attempts
        self.limit = limit

    async def process(self, payload: bytes | None, partition: int, offset: int) -> ExportOutcome:
        """Run (or give up on) one request; raises only when its final status could not
        be published (StackError): the record must then stay unacked."""
        tries = self.attempts.attempt(partition, offset)
        try:
            if tries > self.limit:
                outcome = await self.consumer.give_up(payload, tries - 1)
            else:
                outcome = await self.consumer.handle(payload)
        except StackError:
            # The broker, not the request: this run does not count towards giving up on it.
            self.attempts.release(partition)
            raise
        self.attempts.done(partition)
        self.metrics.exports.labels(outcome.name).inc()
        if outcome.seconds is not None:
            self.metrics.export_seconds.observe(outcome.seconds)
        return outcome


def register(
    app: faust.App,
    settings: AbacusSettings,
    store: Store,
    districts: Mapping[str, DistrictConfig],
    metrics: Metrics,
    broker_epoch: str,
    on_status: StatusHook | None = None,
    *,
    exports_lock: asyncio.Lock,
    want_rollups: Callable[[], None] = lambda: None,
) -> None:
    """``exports_lock``: held while a request runs, so a deletion never runs while an
    export is being written. ``want_rollups``: called while an export waits for the
    rollups (the rollup service's pass then runs at once)."""
    topics = settings.topics
    raw = {"key_serializer": "raw", "value_serializer": "raw"}
    requests = app.topic(topics.name(topics.export_requests), **raw)
    statuses = app.topic(topics.name(topics.export_status), **raw)
    crash_on = settings.test_crash_on_key

    async def publish(doc: dict[str, object]) -> None:
        """Send one status document and wait until the broker has it (acks=all)."""
        key, value = status.encode(doc)
        try:
            delivered = await statuses.send(key=key, value=value)
            await delivered
        except KafkaError as exc:
            raise StackError(f"export status not delivered: {exc!r}") from exc
        if crash_on is not None and doc["request_id"] == crash_on and doc["status"] == "progress":
            # TEST ONLY (ABACUS_TEST_CRASH_ON_KEY): die mid-export, as an OOM kill would.
            log.error("test fault: exiting at once in the middle of export %r", crash_on)
            os._exit(70)

    mail = partial(send_link_mail, settings.smtp) if settings.smtp.host else None
    consumer = ExportConsumer(
        settings, store, districts, publish, mail=mail, broker_epoch=broker_epoch,
        on_status=on_status, want_rollups=want_rollups,
    )  # fmt: skip
    name = f"export-attempts-{settings.app_id}-{settings.web.port}.json"
    attempts = AttemptLog(settings.state_dir / name, group=settings.app_id, epoch=broker_epoch)
    handler = ExportRequests(consumer, metrics, attempts, settings.poison_attempts)

    @app.agent(requests, name="export")
    async def export(stream: faust.StreamT[bytes]) -> None:
        manual = stream.noack()
        async for event in manual.events():
            message = event.message
            try:
                async with exports_lock:
                    await handler.process(message.value, message.partition, message.offset)
            except StackError as exc:
                # The broker would not take the final status: stop the worker without
                # acking; after the restart the request runs again and says how it ended.
                await app.crash(exc)
                return
            await manual.ack(event)
