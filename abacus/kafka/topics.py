"""Create the stack's Kafka topics idempotently, with explicit cleanup and retention."""

from __future__ import annotations

import logging

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from abacus.errors import StackError
from abacus.kafka_clients import kafka_python_config
from abacus.settings import AbacusSettings

__all__ = ["ensure_topics", "topic_specs"]

log = logging.getLogger(__name__)


def topic_specs(settings: AbacusSettings) -> list[NewTopic]:
    """Every topic the stack uses, with partitions and configs.

    Retention is explicit: events for ``topics.events_retention_ms`` (a replay window; the
    store is the record), dead letters forever (``-1``: kept until replayed, and a replay
    does not remove them), roster and meta topics compacted (latest record per key).
    Configs apply when a topic is created; an existing topic keeps its own. The embedded
    Tansu broker accepts them but keeps everything in memory until it stops.
    """
    t = settings.topics
    compact = {"cleanup.policy": "compact"}
    forever = {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"}
    events = {"cleanup.policy": "delete", "retention.ms": str(t.events_retention_ms)}
    specs = [
        NewTopic(t.name(t.events), t.partitions, 1, topic_configs=events),
        NewTopic(t.name(t.dead_letter), 1, 1, topic_configs=forever),
        NewTopic(t.name(t.export_requests), 1, 1),
        NewTopic(t.name(t.export_status), 1, 1),
    ]
    roster = (t.roster_users, t.roster_students, t.roster_links, t.district_config)
    for name in (*roster, t.roster_oneroster, t.meta):
        specs.append(NewTopic(t.name(name), 1, 1, topic_configs=compact))
    return specs


def ensure_topics(settings: AbacusSettings) -> list[str]:
    """Create missing topics; existing ones are left as they are. Returns those created."""
    try:
        admin = KafkaAdminClient(
            **kafka_python_config(settings.broker), client_id=f"{settings.app_id}-admin"
        )
    except KafkaError as exc:
        raise StackError(f"broker {settings.broker.servers} unreachable: {exc}") from exc
    try:
        existing = set(admin.list_topics())
        created = []
        for spec in topic_specs(settings):
            if spec.name in existing:
                continue
            try:
                admin.create_topics([spec])
                created.append(spec.name)
            except TopicAlreadyExistsError:
                continue
        if created:
            log.info("created topics %s", ", ".join(created))
        return created
    except KafkaError as exc:
        raise StackError(f"cannot create topics on {settings.broker.servers}: {exc}") from exc
    finally:
        admin.close()
