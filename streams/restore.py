"""At worker start: put back on Kafka what only ClickHouse still holds (embedded restarts).

The embedded broker forgets its topics when it stops; ClickHouse is the durable record.
Once per broker epoch, before any agent or importer reads them, the worker republishes
- every roster and district-config record whose key is missing from its compacted topic
  (the rows as stored: same key, fields and version), so the next import can deactivate
  a student removed from the upload; likewise the OneRoster importer's state buckets
  (roster-oneroster, stored as published), so a delta package after a restart still finds
  the rows of earlier uploads;
- every dead letter, when the dead-letter topic is empty, so `abacus dlq` still lists and
  replays them (a deleted student's are no longer in ClickHouse: never put back);
- every deny-list entry missing from `privacy-deny`, so `abacus dlq` keeps skipping the
  dead letters of deleted students.
Against an external Kafka whose topics are intact, nothing is missing and nothing is
sent. Then ``restored:<epoch>`` goes on the meta topic (the importer waits for it).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from abacus.catalog import DEAD_LETTERS, PRIVACY_DENY
from abacus.errors import StackError
from abacus.events.dead_letter import RESTORED_FROM, dead_letter_record
from abacus.kafka.broker_epoch import mark_restored
from abacus.kafka.compacted import publish, read_latest
from abacus.kafka_clients import kafka_python_config
from abacus.privacy.deny import encode_entry
from abacus.roster.records import RosterKind
from abacus.roster.restore import RESTORE_SOURCES, STATE_SOURCE, restored_record, restored_state
from abacus.settings import AbacusSettings
from abacus.store.store import Store
from streams.dead_letters import producer_max_request_bytes

__all__ = ["restore_topics"]

log = logging.getLogger(__name__)


def restore_topics(settings: AbacusSettings, store: Store, epoch: str) -> dict[str, int]:
    """Republish what the topics lack for this epoch; returns records sent per topic.
    (Run once per epoch: the caller checks the meta topic's ``restored:<epoch>``.)"""
    sent = _restore_roster(settings, store)
    sent.update(_restore_dead_letters(settings, store))
    sent.update(_restore_deny(settings, store))
    mark_restored(settings, epoch)
    if any(sent.values()):
        log.info("restored from ClickHouse for broker epoch %s: %s", epoch, sent)
    return sent


def _topic_of(settings: AbacusSettings, kind: RosterKind) -> str:
    t = settings.topics
    names = {
        RosterKind.USERS: t.roster_users,
        RosterKind.STUDENTS: t.roster_students,
        RosterKind.LINKS: t.roster_links,
        RosterKind.DISTRICT: t.district_config,
    }
    return t.name(names[kind])


def _restore_roster(settings: AbacusSettings, store: Store) -> dict[str, int]:
    kinds = [kind for kind, table in RESTORE_SOURCES.items() if store.has_rows(table)]
    with_state = store.has_rows(STATE_SOURCE)
    if not kinds and not with_state:
        return {}
    topics = {kind: _topic_of(settings, kind) for kind in kinds}
    state_topic = settings.topics.name(settings.topics.roster_oneroster)
    present = read_latest(settings, [*topics.values(), *([state_topic] if with_state else [])])
    out: list[tuple[str, bytes, bytes]] = []
    sent: dict[str, int] = {}

    def missing(topic: str, key: bytes, value: bytes) -> None:
        if key not in present[topic]:
            out.append((topic, key, value))
            sent[topic] = sent.get(topic, 0) + 1

    for kind in kinds:
        for row in store.latest_rows(RESTORE_SOURCES[kind]):
            missing(topics[kind], *restored_record(kind, row))
    if with_state:
        for row in store.latest_rows(STATE_SOURCE):
            missing(state_topic, *restored_state(row))
    publish(settings, out)
    return sent


def _restore_deny(settings: AbacusSettings, store: Store) -> dict[str, int]:
    if not store.has_rows(PRIVACY_DENY):
        return {}
    topic = settings.topics.name(settings.topics.privacy_deny)
    present = read_latest(settings, [topic])[topic]
    missing = [encode_entry(e) for e in store.load_deny()]
    out = [(topic, key, value) for key, value in missing if present.get(key) != value]
    publish(settings, out)
    return {topic: len(out)} if out else {}


def _restore_dead_letters(settings: AbacusSettings, store: Store) -> dict[str, int]:
    topic = settings.topics.name(settings.topics.dead_letter)
    if not store.has_rows(DEAD_LETTERS) or not _topic_is_empty(settings, topic):
        return {}
    servers = settings.broker.servers
    limit = settings.dead_letter_max_bytes
    try:
        producer = KafkaProducer(
            **kafka_python_config(settings.broker),
            acks="all",
            max_request_size=producer_max_request_bytes(limit),
            client_id=f"{settings.app_id}-restore",
        )
    except KafkaError as exc:
        raise StackError(f"broker {servers} unreachable: {exc}") from exc

    def send(rows: Iterator[Mapping[str, Any]]) -> int:
        # On the store's thread as the rows stream in; a flush per 1000 bounds memory.
        futures: list[Any] = []
        sent = 0
        for row in rows:
            futures.append(producer.send(topic, **_letter(row, limit)))
            if len(futures) >= 1000:
                sent += _acked(producer, futures)
        return sent + _acked(producer, futures)

    try:
        return {topic: store.stream_dead_letters(send)}
    except KafkaError as exc:
        raise StackError(f"cannot restore dead letters to {topic}: {exc}") from exc
    finally:
        producer.close()


def _acked(producer: KafkaProducer, futures: list[Any]) -> int:
    """Wait for every future's ack; returns how many, and empties the list."""
    producer.flush()
    for future in futures:
        future.get(timeout=60)
    done = len(futures)
    futures.clear()
    return done


def _letter(doc: Mapping[str, Any], limit: int) -> dict[str, Any]:
    key, value = doc["key"], doc["value"]
    letter = dead_letter_record(
        key=_bytes(key) or None,
        value=_bytes(value),
        reason=doc["reason"],
        topic=doc["src_topic"],
        partition=int(doc["src_partition"]),
        offset=int(doc["src_offset"]),
        epoch=doc["epoch"],
        failed_at=doc["failed_at"].isoformat(),
        max_bytes=limit,
    )
    headers = [*letter.headers, (RESTORED_FROM, b"clickhouse")]
    return {"key": letter.key, "value": letter.value, "headers": headers}


def _bytes(value: str | bytes) -> bytes:
    # Read with column_formats "bytes"; a str would mean the driver decoded it anyway.
    return value if isinstance(value, bytes) else value.encode("utf-8", "surrogateescape")


def _topic_is_empty(settings: AbacusSettings, topic: str) -> bool:
    servers = settings.broker.servers
    try:
        consumer = KafkaConsumer(**kafka_python_config(settings.broker), enable_auto_commit=False)
    except KafkaError as exc:
        raise StackError(f"broker {servers} unreachable: {exc}") from exc
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return all(end == 0 for end in consumer.end_offsets(parts).values())
    except KafkaError as exc:
        raise StackError(f"cannot read {topic} on {servers}: {exc}") from exc
    finally:
        consumer.close()
