"""The export agent: a thin loop from `export-requests` to the export consumer."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

import faust

from abacus.district import DistrictConfig
from abacus.export import status
from abacus.mail import send_link_mail
from abacus.settings import AbacusSettings
from abacus.store.store import Store
from consumers.export import ExportConsumer, StatusHook
from streams.metrics import Metrics

__all__ = ["register"]


def register(
    app: faust.App,
    settings: AbacusSettings,
    store: Store,
    districts: Mapping[str, DistrictConfig],
    metrics: Metrics,
    broker_epoch: str,
    on_status: StatusHook | None = None,
) -> None:
    topics = settings.topics
    raw = {"key_serializer": "raw", "value_serializer": "raw"}
    requests = app.topic(topics.name(topics.export_requests), **raw)
    statuses = app.topic(topics.name(topics.export_status), **raw)

    async def publish(doc: dict[str, object]) -> None:
        key, value = status.encode(doc)
        await statuses.send(key=key, value=value)

    mail = partial(send_link_mail, settings.smtp) if settings.smtp.host else None
    consumer = ExportConsumer(
        settings, store, districts, publish, mail=mail, broker_epoch=broker_epoch,
        on_status=on_status,
    )  # fmt: skip

    @app.agent(requests, name="export")
    async def export(stream: faust.StreamT[bytes]) -> None:
        # One request at a time; a failure of one request becomes its failed status and
        # never kills the agent.
        async for payload in stream:
            outcome = await consumer.handle(payload)
            metrics.exports.labels(outcome.name).inc()
            if outcome.seconds is not None:
                metrics.export_seconds.observe(outcome.seconds)
