"""Readiness of one worker: topics exist, migrations applied, partitions assigned, and
roster batches being stored (false while the store refuses them)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Protocol

import faust
from faust.exceptions import ConsumerNotStarted

__all__ = ["Assigned", "Readiness", "holds_partitions", "refresh"]


class Assigned(Protocol):
    """A consumer hosted beside the Faust agents (the ingest service, the roster consumer)."""

    def assignment(self) -> set[object]: ...


@dataclass
class Readiness:
    """The checks behind /readyz; set by streams/run.py as each one passes, and by the
    roster agent (`roster_store`) while the store refuses its batches."""

    topics: bool = False
    migrations: bool = False
    assignment: bool = False
    roster_store: bool = True

    @property
    def ready(self) -> bool:
        return self.topics and self.migrations and self.assignment and self.roster_store

    def as_dict(self) -> dict[str, bool]:
        return asdict(self)


def holds_partitions(app: faust.App, ingest: Assigned | None, *hosted: Assigned) -> bool:
    """Whether this worker's consumers hold partitions right now: the Faust agents' and,
    when the app hosts them, the ingest service's and the other `hosted` consumers'."""
    ingest_ready = ingest is None or bool(ingest.assignment())
    ingest_ready = ingest_ready and all(c.assignment() for c in hosted)
    try:
        agents_ready = bool(app.consumer.assignment())
    except ConsumerNotStarted:  # asked while the worker is still starting: not ready (503)
        return False
    return agents_ready and ingest_ready


def refresh(
    app: faust.App, readiness: Readiness, ingest: Assigned | None, *hosted: Assigned
) -> bool:
    """Re-check the assignment (a revoked worker is not ready) and say if all checks pass."""
    readiness.assignment = holds_partitions(app, ingest, *hosted)
    return readiness.ready
