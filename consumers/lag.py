"""Consumer lag per group/topic/partition, read from the broker (committed vs log-end offsets)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from abacus.errors import StackError
from abacus.kafka.log_end import first_records, true_log_ends
from abacus.kafka_clients import kafka_python_config
from abacus.settings import BrokerSettings
from consumers.lag_status import GroupStatus, Offsets, WindowSample, evaluate

__all__ = ["GroupReport", "LagReader", "PartitionLag", "read_lag", "watch"]


@dataclass(frozen=True)
class PartitionLag:
    """One row of the lag table; ``lag_seconds`` = age of the oldest unconsumed record."""

    group: str
    topic: str
    partition: int
    committed: int | None
    log_end: int
    log_start: int = 0
    lag_seconds: float | None = None

    @property
    def lag(self) -> int:
        start = self.committed if self.committed is not None else self.log_start
        return max(0, self.log_end - start)


class _Admin(KafkaAdminClient):  # type: ignore[misc]
    def _process_acl_operations(self, obj: dict[str, Any]) -> dict[str, Any]:
        # Tansu answers DescribeGroups with operation bits kafka-python cannot map to
        # ACLOperation (ValueError: 15); we never need them.
        obj.pop("authorized_operations", None)
        return obj


class LagReader:
    """Reusable broker clients for lag snapshots (admin: groups, offsets; consumer: ends)."""

    def __init__(self, broker: BrokerSettings, client_id: str = "abacus-lag") -> None:
        self.bootstrap = bootstrap = broker.servers
        try:
            self.admin = _Admin(**kafka_python_config(broker), client_id=client_id)
            self.consumer = KafkaConsumer(
                **kafka_python_config(broker),
                client_id=client_id,
                enable_auto_commit=False,
                fetch_max_wait_ms=100,
                # It reads offsets and timestamps only, inside the worker every tick: the
                # pure-Python CRC check of each fetched batch cost ingest a third of its
                # rate while the group lagged (`abacus bench ops`); the broker checks CRCs
                # on produce.
                check_crcs=False,
                # One record (or a log's last batch) per partition is all it reads, and
                # kafka-python decodes everything fetched in Python: with 1 MiB a partition
                # (the default) that was ~21% of the worker's samples under single-record
                # ingest (py-spy). A batch larger than this still comes whole (KIP-74).
                max_partition_fetch_bytes=64 << 10,
                fetch_max_bytes=1 << 20,
            )
        except KafkaError as exc:
            raise StackError(f"broker {bootstrap} unreachable: {exc}") from exc

    def close(self) -> None:
        self.consumer.close()
        self.admin.close()

    def __enter__(self) -> LagReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def groups(self) -> list[str]:
        """Every consumer group the broker lists."""
        try:
            return sorted(g["group_id"] for g in self.admin.list_groups())
        except KafkaError as exc:
            raise StackError(f"cannot list groups on {self.bootstrap}: {exc}") from exc

    def members(self, group: str) -> int:
        """Active members of ``group`` (0 = nobody is consuming)."""
        try:
            described = self.admin.describe_groups([group]).get(group, {})
        except KafkaError as exc:
            raise StackError(f"cannot describe group {group}: {exc}") from exc
        return len(described.get("members") or [])

    def committed(self, group: str) -> dict[TopicPartition, int]:
        try:
            offsets = self.admin.list_group_offsets({group: None}).get(group, {})
        except KafkaError as exc:
            raise StackError(f"cannot read offsets of group {group}: {exc}") from exc
        return {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}

    def partitions(self, topics: Iterable[str]) -> list[TopicPartition]:
        return [
            TopicPartition(topic, p)
            for topic in sorted(set(topics))
            for p in sorted(self.consumer.partitions_for_topic(topic) or ())
        ]

    def snapshot(
        self, group: str, topics: Iterable[str] = (), *, with_seconds: bool = True
    ) -> list[PartitionLag]:
        """Lag of ``group`` on ``topics`` plus every topic it has committed offsets for."""
        return self.snapshot_groups({group: topics}, with_seconds=with_seconds)[group]

    def snapshot_groups(
        self, groups: Mapping[str, Iterable[str]], *, with_seconds: bool = True
    ) -> dict[str, list[PartitionLag]]:
        """``snapshot`` of several groups, reading each partition's log end only once."""
        try:
            committed = {group: self.committed(group) for group in groups}
            wanted = {
                group: self.partitions({*topics, *(tp.topic for tp in committed[group])})
                for group, topics in groups.items()
            }
            parts = sorted({tp for tps in wanted.values() for tp in tps})
            if not parts:
                return {group: [] for group in groups}
            starts = self.consumer.beginning_offsets(parts)
            ends = true_log_ends(self.consumer, self.consumer.end_offsets(parts))
            out: dict[str, list[PartitionLag]] = {}
            for group, tps in wanted.items():
                rows = [
                    PartitionLag(
                        group,
                        tp.topic,
                        tp.partition,
                        committed[group].get(tp),
                        ends[tp],
                        starts[tp],
                    )
                    for tp in tps
                ]
                out[group] = self._with_seconds(rows) if with_seconds else rows
            return out
        except KafkaError as exc:
            raise StackError(f"cannot read lag from {self.bootstrap}: {exc}") from exc

    def _with_seconds(self, rows: list[PartitionLag]) -> list[PartitionLag]:
        """lag_seconds = now - timestamp of the record at the committed offset (0 if no lag)."""
        behind = {
            TopicPartition(r.topic, r.partition): r.log_end - r.lag for r in rows if r.lag > 0
        }
        stamps = {
            tp: record.timestamp for tp, record in first_records(self.consumer, behind).items()
        }
        now_ms = time.time() * 1000
        out = []
        for r in rows:
            stamp = stamps.get(TopicPartition(r.topic, r.partition))
            seconds = 0.0 if r.lag == 0 else None
            if stamp is not None:
                seconds = max(0.0, (now_ms - stamp) / 1000)
            out.append(replace(r, lag_seconds=seconds))
        return out


@dataclass(frozen=True)
class GroupReport:
    """A group judged over a window: its status, members now and the last lag rows."""

    group: str
    status: GroupStatus
    members: int
    rows: list[PartitionLag]
    statuses: dict[tuple[str, int], GroupStatus]


def _as_sample(members: int, rows: list[PartitionLag]) -> WindowSample:
    offsets = {(r.topic, r.partition): Offsets(r.log_end - r.lag, r.log_end) for r in rows}
    return WindowSample(members, offsets)


def watch(
    reader: LagReader,
    groups: list[str],
    topics: Iterable[str] = (),
    *,
    window_s: float = 6.0,
    samples: int = 4,
    group_topics: Mapping[str, Iterable[str]] | None = None,
) -> list[GroupReport]:
    """Sample every group ``samples`` times over ``window_s`` seconds, then judge each.

    ``topics`` are reported for every group (even before a commit); ``group_topics``
    adds topics for one group only."""
    topics = list(topics)
    extra = {g: list(t) for g, t in (group_topics or {}).items()}
    taken: dict[str, list[WindowSample]] = {g: [] for g in groups}
    last: dict[str, list[PartitionLag]] = {}
    members: dict[str, int] = {}
    pause = window_s / max(1, samples - 1)
    for i in range(samples):
        started = time.monotonic()
        final = i == samples - 1
        for group in groups:
            rows = reader.snapshot(group, [*topics, *extra.get(group, [])], with_seconds=final)
            members[group] = reader.members(group)
            taken[group].append(_as_sample(members[group], rows))
            last[group] = rows
        if not final:
            time.sleep(max(0.0, pause - (time.monotonic() - started)))
    reports = []
    for group in groups:
        status, statuses = evaluate(taken[group])
        reports.append(GroupReport(group, status, members[group], last[group], statuses))
    return reports


def read_lag(broker: BrokerSettings, group: str, topics: list[str]) -> list[PartitionLag]:
    """One lag snapshot of ``group`` (committed None = never committed)."""
    with LagReader(broker) as reader:
        return reader.snapshot(group, topics)
