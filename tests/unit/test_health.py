"""Readiness while the worker starts: a consumer that is not started yet means 503, not 500."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from faust.exceptions import ConsumerNotStarted

from streams.health import Readiness, holds_partitions, refresh


class _Consumer:
    def __init__(self, assignment: set[str] | None) -> None:
        self._assignment = assignment

    def assignment(self) -> set[str]:
        if self._assignment is None:
            raise ConsumerNotStarted("Consumer thread not yet started")
        return self._assignment


def _app(agents: set[str] | None) -> Any:
    return SimpleNamespace(consumer=_Consumer(agents))


def _ingest(partitions: set[str] | None) -> _Consumer | None:
    return None if partitions is None else _Consumer(partitions)


def test_a_consumer_still_starting_is_not_ready_rather_than_an_error() -> None:
    readiness = Readiness(topics=True, migrations=True)
    assert refresh(_app(None), readiness, _ingest({"events-0"})) is False
    assert readiness.assignment is False


def test_both_consumers_must_hold_partitions() -> None:
    assert holds_partitions(_app({"roster-0"}), _ingest({"events-0"})) is True
    assert holds_partitions(_app({"roster-0"}), _ingest(set())) is False
    assert holds_partitions(_app(set()), _ingest({"events-0"})) is False
    assert holds_partitions(_app({"roster-0"}), None) is True  # no ingest service hosted


def test_the_roster_consumer_must_hold_partitions_too() -> None:
    app, ingest = _app({"export-requests-0"}), _ingest({"events-0"})
    assert holds_partitions(app, ingest, _Consumer({"roster-users-0"})) is True
    assert holds_partitions(app, ingest, _Consumer(set())) is False
    readiness = Readiness(topics=True, migrations=True)
    assert refresh(app, readiness, ingest, _Consumer(set())) is False
    assert refresh(app, readiness, ingest, _Consumer({"roster-users-0"})) is True
