"""What the read-only /ops page shows, built from the lag monitor's history and the
worker's counters (pure, no I/O): groups with their status and partitions, dead letters
by reason, and ingest freshness over a recent window."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from consumers.lag_history import LagHistory
from consumers.lag_status import GroupStatus

__all__ = ["Buckets", "FreshnessWindow", "GroupView", "PartitionView", "group_views", "quantile"]

# Cumulative histogram buckets: (upper bound, observations at or below it), +Inf last.
Buckets = Sequence[tuple[float, float]]


@dataclass(frozen=True)
class PartitionView:
    topic: str
    partition: int
    committed: int | None
    log_end: int
    lag: int
    lag_seconds: float | None
    status: GroupStatus


@dataclass(frozen=True)
class GroupView:
    group: str
    status: GroupStatus
    members: int
    measured_at: float | None
    partitions: list[PartitionView]

    @property
    def lag(self) -> int:
        return sum(p.lag for p in self.partitions)


def group_views(history: LagHistory, window_s: float) -> list[GroupView]:
    """Every group of the history as of its latest sample, judged over ``window_s``."""
    views = []
    for group in history.groups():
        last = history.latest(group)
        status, per_partition = history.status(group, window_s)
        rows = sorted(last.rows if last is not None else [], key=lambda r: (r.topic, r.partition))
        partitions = []
        for r in rows:
            judged = per_partition.get((r.topic, r.partition), GroupStatus.OK)
            lag = (r.committed, r.log_end, r.lag, r.lag_seconds)
            partitions.append(PartitionView(r.topic, r.partition, *lag, judged))
        members = last.members if last is not None else 0
        views.append(GroupView(group, status, members, last.at if last else None, partitions))
    return views


def quantile(buckets: Buckets, q: float) -> float | None:
    """Prometheus's ``histogram_quantile`` over cumulative buckets: linear within the
    bucket holding rank q·count; the last finite bound when it falls in +Inf; None when
    there are no observations."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            share = (rank - lower_count) / (count - lower_count)
            return lower_bound + (bound - lower_bound) * share
        lower_bound, lower_count = bound, count
    return lower_bound


class FreshnessWindow:
    """Snapshots of the freshness histogram (a ring), so quantiles cover only the last
    ``window_s`` seconds: the difference between the newest snapshot and the newest one
    at least ``window_s`` older (or the oldest kept)."""

    def __init__(self, max_snapshots: int) -> None:
        self._snapshots: deque[tuple[float, Buckets]] = deque(maxlen=max_snapshots)

    def add(self, at: float, buckets: Buckets) -> None:
        self._snapshots.append((at, list(buckets)))

    def recent(self, window_s: float) -> Buckets:
        """The buckets of the observations made in the last ``window_s`` seconds."""
        if not self._snapshots:
            return []
        now, newest = self._snapshots[-1]
        base: Mapping[float, float] = {}
        for at, buckets in self._snapshots:
            if at > now - window_s:
                break
            base = dict(buckets)
        return [(bound, count - base.get(bound, 0.0)) for bound, count in newest]
