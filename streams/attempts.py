"""How often workers have tried, and died on, the same batch: a small file per worker.

A batch that crashes the worker (a bug in our own code, not a bad record: those are dead
letters) would otherwise be read again after every restart, forever. Before a batch is
stored, the worker counts an attempt for each partition at the batch's first offset,
keeping the count across runs in ``$ABACUS_HOME/state``. A run that gets past that
offset starts counting afresh; a run that dies on it leaves the count behind, and the
next run adds one. Past ``poison_attempts`` the batch is dead-lettered whole
(``poison_batch``) instead of stored, so the stream goes on.

A local file, not a ClickHouse table: the store may be the very thing failing, a file
write costs microseconds where an insert costs milliseconds and a part, and a hard crash
(a segfault in an engine) leaves no chance to record anything afterwards. Keyed by
group, broker epoch and partition; a run that fails for a reason outside the batch (the
store or broker unreachable) takes its counts back (`forgive`), so an outage never
quarantines good data.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path

__all__ = ["AttemptLog"]

log = logging.getLogger(__name__)


class AttemptLog:
    """Attempts per partition at one offset, this run and the runs before it."""

    def __init__(self, path: Path, *, group: str, epoch: str) -> None:
        self.path = path
        self.group = group
        self.epoch = epoch
        self.prior = self._load()
        self.current = dict(self.prior)
        self._counted: set[tuple[int, int]] = set()

    def _load(self) -> dict[int, tuple[int, int]]:
        try:
            doc = json.loads(self.path.read_text())
            if doc.get("group") != self.group or doc.get("epoch") != self.epoch:
                return {}
            return {int(p): (int(o), int(k)) for p, (o, k) in doc["partitions"].items()}
        except FileNotFoundError:
            return {}
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("ignoring an unreadable attempts file %s", self.path)
            return {}

    def attempt(self, partition: int, offset: int) -> int:
        """Count this run's attempt at a batch starting at partition:offset (once per
        run) and return the attempts so far, this one included."""
        if (partition, offset) not in self._counted:
            before = self.prior.get(partition)
            count = before[1] + 1 if before is not None and before[0] == offset else 1
            self.current[partition] = (offset, count)
            self._counted.add((partition, offset))
            self._write()
        return self.current[partition][1]

    def release(self, partition: int) -> None:
        """This run's attempt at the partition does not count: the partition was revoked
        before its batch finished (the new owner reads it again), so nothing crashed.
        Counts left by earlier runs stay."""
        self._counted = {c for c in self._counted if c[0] != partition}
        before = self.prior.get(partition)
        if before is None:
            self.current.pop(partition, None)
        else:
            self.current[partition] = before
        self._write()

    def done(self, partition: int) -> None:
        """The partition's record at the counted offset was handled to its end: forget
        every count of it (a redelivery, say after a crash before the offset commit,
        starts afresh)."""
        self._counted = {c for c in self._counted if c[0] != partition}
        self.prior.pop(partition, None)
        if self.current.pop(partition, None) is not None:
            self._write()

    def forgive(self) -> None:
        """This run failed for a reason outside its batches: its attempts do not count."""
        self.current = dict(self.prior)
        self._write()

    def _write(self) -> None:
        doc = {
            "group": self.group,
            "epoch": self.epoch,
            "partitions": {str(p): list(v) for p, v in sorted(self.current.items())},
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, self.path)

    def clear(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
