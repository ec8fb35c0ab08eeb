"""A roster batch the store refuses is tried again (capped exponential backoff) until it is
stored — retriable or not — never dropped, counted, and shown on /readyz meanwhile. The
roster agent's store step with a fake store that fails N times, then takes the rows."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import pytest

from abacus.catalog import ROSTER_STUDENTS, ROSTER_STUDENTS_HISTORY, ROSTER_USERS, Table
from abacus.errors import StorageError
from abacus.roster.records import RosterKind
from streams.agents.roster import store_batch
from streams.health import Readiness
from streams.metrics import Metrics
from streams.store_retry import StoreRetry


class FlakyStore:
    """Refuses the first ``failures`` inserts with ``error``, then keeps every row."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0
        self.tables: dict[str, list[tuple[Any, ...]]] = {}

    async def ainsert_rows(self, table: Table, rows: list[tuple[Any, ...]]) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        self.tables.setdefault(table.name, []).extend(rows)


class NoDistricts:
    async def update(self, config: Any) -> None:
        raise AssertionError("no district config in this batch")


class Harness:
    def __init__(self) -> None:
        self.metrics = Metrics()
        self.readiness = Readiness(topics=True, migrations=True, assignment=True)
        self.sleeps: list[float] = []
        self.ready_while_sleeping: list[bool] = []

        def failing(now: bool) -> None:
            self.readiness.roster_store = not now

        async def sleep(seconds: float) -> None:
            self.sleeps.append(seconds)
            self.ready_while_sleeping.append(self.readiness.ready)

        self.retry = StoreRetry(
            "roster batch", self.metrics.roster_store_failures, failing,
            first_delay_s=0.5, max_delay_s=4.0, sleep=sleep,
        )  # fmt: skip

    def failures(self, retriable: str) -> float | None:
        return self.metrics.registry.get_sample_value(
            "abacus_roster_store_failures_total", {"retriable": retriable}
        )


ROWS = {
    RosterKind.STUDENTS: [("maple", "S1", "Ada"), ("maple", "S2", "Bo")],
    RosterKind.USERS: [("maple", "0401", "Boss")],
}


@pytest.mark.parametrize(
    ("error", "label"),
    [
        (StorageError("insert failed: Code: 241", retriable=True, code=241), "true"),
        (StorageError("insert failed: Code: 60", retriable=False, code=60), "false"),
        (RuntimeError("a bug in the driver"), "false"),
    ],
)
async def test_a_batch_is_tried_again_until_stored_whatever_the_error(
    error: Exception, label: str, caplog: pytest.LogCaptureFixture
) -> None:
    h = Harness()
    store = FlakyStore(failures=6, error=error)
    write = partial(store_batch, store, NoDistricts(), ROWS, {})  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING):
        assert await h.retry.run(write) == 6
    # Stored in the end, every row (the second table of students included), none twice.
    assert store.tables == {
        ROSTER_STUDENTS.name: ROWS[RosterKind.STUDENTS],
        ROSTER_STUDENTS_HISTORY.name: ROWS[RosterKind.STUDENTS],
        ROSTER_USERS.name: ROWS[RosterKind.USERS],
    }
    assert h.sleeps == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]  # doubling, capped
    assert h.failures(label) == 6
    assert h.ready_while_sleeping == [False] * 6  # /readyz says so while it fails
    assert h.readiness.ready  # and ready again once stored
    levels = {r.levelname for r in caplog.records if "not stored" in r.getMessage().lower()}
    assert levels == ({"WARNING"} if label == "true" else {"ERROR"})
    # No values from the driver's message reach the log (they may be personal).
    assert not any("Code:" in r.getMessage() for r in caplog.records)


async def test_a_batch_stored_at_once_counts_nothing() -> None:
    h = Harness()
    store = FlakyStore(failures=0, error=RuntimeError())
    assert await h.retry.run(partial(store_batch, store, NoDistricts(), ROWS, {})) == 0  # type: ignore[arg-type]
    assert h.sleeps == []
    assert h.failures("true") == h.failures("false") == 0
