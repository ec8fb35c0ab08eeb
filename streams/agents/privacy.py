"""The privacy agent: a thin loop from `privacy-requests` to the privacy consumer."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Sequence
from importlib.metadata import version

import faust

from abacus.kafka import privacy as kafka_privacy
from abacus.privacy import status
from abacus.privacy.deny import DenyEntry, DenyList
from abacus.privacy.receipt import TopicResult
from abacus.settings import AbacusSettings
from abacus.store.store import Store
from consumers.privacy import PrivacyConsumer
from consumers.privacy_topics import clear_roster_keys
from streams.metrics import Metrics

__all__ = ["KafkaPrivacyTopics", "register"]


class KafkaPrivacyTopics:
    """`consumers.privacy.PrivacyTopics` on the configured broker."""

    def __init__(self, settings: AbacusSettings) -> None:
        self.settings = settings

    def publish_deny(self, entries: Sequence[DenyEntry]) -> None:
        kafka_privacy.publish_deny(self.settings, entries)

    def clear_roster_keys(
        self, district_id: str, students: Collection[str] | None
    ) -> list[TopicResult]:
        return clear_roster_keys(self.settings, district_id, students)


def register(
    app: faust.App,
    settings: AbacusSettings,
    store: Store,
    deny: DenyList,
    metrics: Metrics,
    *,
    barrier: Callable[[], Awaitable[None]],
    forget_district: Callable[[str], None],
    exports_lock: asyncio.Lock,
) -> PrivacyConsumer:
    topics = settings.topics
    raw = {"key_serializer": "raw", "value_serializer": "raw"}
    requests = app.topic(topics.name(topics.privacy_requests), **raw)
    statuses = app.topic(topics.name(topics.privacy_status), **raw)

    async def publish(doc: dict[str, object]) -> None:
        key, value = status.encode(doc)
        await statuses.send(key=key, value=value)

    consumer = PrivacyConsumer(
        settings,
        store,
        deny,
        KafkaPrivacyTopics(settings),
        publish,
        barrier=barrier,
        forget_district=forget_district,
        exports_lock=exports_lock,
        version=version("abacus"),
    )

    @app.agent(requests, name="privacy")
    async def privacy(stream: faust.StreamT[bytes]) -> None:
        # One request at a time; a failure becomes its failed status, never kills the agent.
        async for payload in stream:
            outcome = await consumer.handle(payload)
            metrics.privacy_requests.labels(outcome.name).inc()
            if outcome.seconds is not None:
                metrics.privacy_seconds.observe(outcome.seconds)

    return consumer
