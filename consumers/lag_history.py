"""A bounded in-memory history of lag samples per group, and the group status it implies (pure)."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from consumers.lag_status import GroupStatus, Offsets, WindowSample, evaluate

if TYPE_CHECKING:
    from consumers.lag import PartitionLag

__all__ = ["GroupSample", "LagHistory"]


@dataclass(frozen=True)
class GroupSample:
    """One look at one group: when (epoch seconds), its members and its lag rows."""

    at: float
    group: str
    members: int
    rows: Sequence[PartitionLag]

    def as_window_sample(self) -> WindowSample:
        offsets = {(r.topic, r.partition): Offsets(r.log_end - r.lag, r.log_end) for r in self.rows}
        return WindowSample(self.members, offsets)


class LagHistory:
    """The last ``max_samples`` samples of each group, oldest first (a ring buffer)."""

    def __init__(self, max_samples: int) -> None:
        if max_samples < 1:
            raise ValueError("max_samples must be at least 1")
        self.max_samples = max_samples
        self._samples: dict[str, deque[GroupSample]] = {}

    def add(self, sample: GroupSample) -> None:
        ring = self._samples.setdefault(sample.group, deque(maxlen=self.max_samples))
        ring.append(sample)

    def groups(self) -> list[str]:
        return sorted(self._samples)

    def samples(self, group: str, since: float | None = None) -> list[GroupSample]:
        """The group's samples taken at or after ``since`` (all kept ones when None)."""
        ring = self._samples.get(group, ())
        return [s for s in ring if since is None or s.at >= since]

    def latest(self, group: str) -> GroupSample | None:
        ring = self._samples.get(group)
        return ring[-1] if ring else None

    def status(
        self, group: str, window_s: float
    ) -> tuple[GroupStatus, dict[tuple[str, int], GroupStatus]]:
        """Burrow-style status over the samples of the last ``window_s`` seconds (counted
        back from the group's latest sample), as ``consumers.lag_status.evaluate`` judges."""
        last = self.latest(group)
        if last is None:
            return evaluate([])
        window = self.samples(group, since=last.at - window_s)
        return evaluate([s.as_window_sample() for s in window])
