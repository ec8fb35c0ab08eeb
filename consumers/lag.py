"""Consumer lag per group/topic/partition, read from the broker (committed vs log-end offsets)."""

from __future__ import annotations

from dataclasses import dataclass

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from abacus.errors import StackError

__all__ = ["PartitionLag", "read_lag"]


@dataclass(frozen=True)
class PartitionLag:
    """One row of the lag table."""

    group: str
    topic: str
    partition: int
    committed: int | None
    log_end: int

    @property
    def lag(self) -> int:
        return self.log_end - (self.committed or 0)


def read_lag(bootstrap: str, group: str, topics: list[str]) -> list[PartitionLag]:
    """Lag of ``group`` on every partition of ``topics`` (committed None = never committed)."""
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="abacus-lag")
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id="abacus-lag")
    except KafkaError as exc:
        raise StackError(f"broker {bootstrap} unreachable: {exc}") from exc
    try:
        committed = admin.list_group_offsets({group: None}).get(group, {})
        parts = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        ends = consumer.end_offsets(parts)
        rows = []
        for tp in parts:
            meta = committed.get(tp)
            offset = meta.offset if meta is not None and meta.offset >= 0 else None
            rows.append(PartitionLag(group, tp.topic, tp.partition, offset, ends[tp]))
        return rows
    except KafkaError as exc:
        raise StackError(f"cannot read lag from {bootstrap}: {exc}") from exc
    finally:
        consumer.close()
        admin.close()
