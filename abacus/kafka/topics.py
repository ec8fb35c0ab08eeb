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
    store is the record), dead letters for ``topics.dead_letter_retention_ms`` (the bound a
    deletion states for them; ClickHouse's ``dead_letters`` keeps each until replayed, and
    the worker puts them back on an emptied topic), roster and meta topics compacted
    (latest record per key), deletion requests and statuses for
    ``topics.privacy_retention_ms``.
    Configs apply when a topic is created; an existing topic keeps its own. The embedded
    Tansu broker accepts them but keeps everything in memory until it stops.
    """
    t = settings.topics
    # A superseded record (a deleted student's, under its tombstone) is compacted away
    # within compaction_lag_ms on Kafka.
    compact = {"cleanup.policy": "compact", "max.compaction.lag.ms": str(t.compaction_lag_ms)}
    privacy = {"cleanup.policy": "delete", "retention.ms": str(t.privacy_retention_ms)}
    # Dead letters: a finite retention, the bound on a deleted student's dead letters on the
    # topic; the durable copy (ClickHouse `dead_letters`) is kept until replayed.
    dead = {"cleanup.policy": "delete", "retention.ms": str(t.dead_letter_retention_ms)}
    events = {"cleanup.policy": "delete", "retention.ms": str(t.events_retention_ms)}
    specs = [
        NewTopic(t.name(t.events), t.partitions, 1, topic_configs=events),
        NewTopic(t.name(t.dead_letter), 1, 1, topic_configs=dead),
        NewTopic(t.name(t.export_requests), 1, 1),
        NewTopic(t.name(t.export_status), 1, 1),
        NewTopic(t.name(t.privacy_requests), 1, 1, topic_configs=privacy),
        NewTopic(t.name(t.privacy_status), 1, 1, topic_configs=privacy),
    ]
    compacted = (t.roster_users, t.roster_students, t.roster_links, t.district_config)
    for name in (*compacted, t.roster_oneroster, t.meta, t.privacy_deny):
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
