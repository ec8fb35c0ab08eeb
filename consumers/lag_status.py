"""Burrow-style group status from a sliding window of lag samples (pure, no I/O)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from itertools import pairwise

__all__ = ["GroupStatus", "Offsets", "WindowSample", "evaluate", "partition_status"]


class GroupStatus(StrEnum):
    """Ordered by severity: a group is as bad as its worst partition. REWIND is a warning
    (the store absorbs re-read events), not a failure: only STALLED and STOPPED fail."""

    OK = "ok"
    LAGGING = "lagging"
    REWIND = "rewind"
    STALLED = "stalled"
    STOPPED = "stopped"

    @property
    def severity(self) -> int:
        return list(GroupStatus).index(self)

    @property
    def failing(self) -> bool:
        """Stalled or stopped: someone must act (the CLI exits non-zero)."""
        return self in (GroupStatus.STALLED, GroupStatus.STOPPED)


@dataclass(frozen=True)
class Offsets:
    """One partition in one sample: where the group is and where the log ends."""

    committed: int
    log_end: int

    @property
    def lag(self) -> int:
        return max(0, self.log_end - self.committed)


@dataclass(frozen=True)
class WindowSample:
    """One look at a group: its active members and offsets per (topic, partition)."""

    members: int
    offsets: Mapping[tuple[str, int], Offsets]


def partition_status(window: Sequence[Offsets], members: int) -> GroupStatus:
    """Status of one partition over its samples, oldest first; ``members`` = now.

    - lag > 0 now and nobody in the group: STOPPED
    - the committed offset went backwards between two samples: REWIND (Burrow's name; an
      offset reset or a consumer committing a stale position: records are read again).
      Checked before the lag-0 rule, so a reset is reported even if the re-read is quick
    - lag 0 at any sample: OK (it keeps up; lag seen between commits is normal)
    - lag > 0 and the committed offset never moved in the window: STALLED
    - commits move but lag is higher at the end than at the start: LAGGING
    - otherwise (commits move, lag shrinking or steady): OK
    """
    if not window:
        return GroupStatus.OK
    first, last = window[0], window[-1]
    if last.lag > 0 and members == 0:
        return GroupStatus.STOPPED
    if any(later.committed < earlier.committed for earlier, later in pairwise(window)):
        return GroupStatus.REWIND
    if any(s.lag == 0 for s in window):
        return GroupStatus.OK
    if len(window) > 1 and last.committed == first.committed:
        return GroupStatus.STALLED
    if last.lag > first.lag:
        return GroupStatus.LAGGING
    return GroupStatus.OK


def evaluate(
    samples: Sequence[WindowSample],
) -> tuple[GroupStatus, dict[tuple[str, int], GroupStatus]]:
    """The group's status (its worst partition's) and each partition's, over the window."""
    if not samples:
        return GroupStatus.OK, {}
    members = samples[-1].members
    keys = sorted({key for s in samples for key in s.offsets})
    per_partition = {
        key: partition_status([s.offsets[key] for s in samples if key in s.offsets], members)
        for key in keys
    }
    worst = max(per_partition.values(), key=lambda s: s.severity, default=GroupStatus.OK)
    return worst, per_partition
