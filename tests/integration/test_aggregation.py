"""Aggregates in ClickHouse equal an independent truth: duplicates, disorder, crashes."""

from __future__ import annotations

import csv
import random
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from abacus.aggregation.queries import DAILY_TOTALS_SQL, PASSES_SQL
from abacus.embedded.broker import EmbeddedBroker
from abacus.simulator import SimStudent, SimulationConfig, simulate
from tests.support.produce import produce_events, wait_consumed
from tests.support.stack import Stack, wait_until
from tests.support.truth import METRICS, daily_truth, passes_truth

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "district"
DISTRICT = "maple-valley"
TZ = "America/Chicago"  # examples/district/district.toml
RANGE = {"start": "2025-08-01", "end": "2026-11-22"}


def roster_students() -> list[SimStudent]:
    with (EXAMPLES / "2_students.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    grade = {"KG": "K"}
    return [
        SimStudent(
            r["StudentID"].strip(),
            grade.get(r["Grade"].strip(), r["Grade"].strip().lstrip("0") or "K"),
        )
        for r in rows
    ]


def import_roster(stack: Stack, district: str = DISTRICT) -> None:
    before = stack.metric_sum("abacus_roster_records_total")
    stack.run("roster", "import", str(EXAMPLES), "--district", district)
    wait_until(
        lambda: stack.metric_sum("abacus_roster_records_total") > before,
        60,
        "roster records consumed",
    )
    time.sleep(1.0)  # let the rest of the import's records land


def stored_daily(
    stack: Stack, district: str = DISTRICT
) -> dict[tuple[str, date], dict[str, float]]:
    rows = stack.query(DAILY_TOTALS_SQL.format(db="abacus"), district=district, **RANGE)
    out = {}
    for sid, day, *values in rows:
        metrics = dict(zip(METRICS, (float(v) for v in values), strict=True))
        if any(metrics.values()):
            out[(sid, date.fromisoformat(day))] = metrics
    return out


def stored_passes(stack: Stack, district: str = DISTRICT) -> dict[str, list[tuple[date, str, str]]]:
    rows = stack.query(PASSES_SQL.format(db="abacus"), district=district, **RANGE)
    out: dict[str, list[tuple[date, str, str]]] = {}
    for sid, _lesson, day, _at, kind, grade, _product in rows:
        out.setdefault(sid, []).append((date.fromisoformat(day), kind, grade))
    return {k: sorted(v) for k, v in out.items()}


def as_float(truth: dict[tuple[str, date], dict[str, float]]) -> dict[Any, dict[str, float]]:
    return {
        k: {m: float(v) for m, v in vals.items()} for k, vals in truth.items() if any(vals.values())
    }


@pytest.fixture(scope="module")
def season() -> list[dict[str, Any]]:
    """Six weeks across the fall DST change, 10% duplicates, 5% late, then shuffled."""
    config = SimulationConfig(
        DISTRICT,
        TZ,
        date(2026, 10, 5),
        date(2026, 11, 13),
        seed=11,
        duplicate_share=0.10,
        late_share=0.05,
    )
    events = simulate(roster_students(), config)
    random.Random(5).shuffle(events)
    return events


LATE = "late-district"


@pytest.fixture(scope="module")
def late_events() -> list[dict[str, Any]]:
    config = SimulationConfig(LATE, TZ, date(2026, 10, 5), date(2026, 10, 9), seed=4)
    return simulate(roster_students()[:5], config)


@pytest.fixture(scope="module")
def shared(
    broker: EmbeddedBroker,
    tmp_path_factory: pytest.TempPathFactory,
    season: list[dict[str, Any]],
    late_events: list[dict[str, Any]],
) -> Iterator[Stack]:
    """One worker for two districts that never meet: the season of a configured district,
    and events of a district configured only after they were stored."""
    stack = Stack(broker.bootstrap, tmp_path_factory.mktemp("aggregation-shared"))
    stack.start_worker()
    import_roster(stack)
    ends = produce_events(stack, season, batch_share=0.5)
    late_ends = produce_events(stack, late_events, seed=3)
    wait_consumed(stack, {p: max(ends.get(p, 0), late_ends.get(p, 0)) for p in {*ends, *late_ends}})
    import_roster(stack, LATE)
    unique = len({e["event_id"] for e in late_events})
    wait_until(
        lambda: stack.metric_sum("abacus_pending_events_resolved_total") >= unique,
        60,
        "pending events resolved",
    )
    assert stack.stop_worker() == 0
    yield stack
    stack.close()


def test_aggregates_equal_the_truth_with_duplicates_and_shuffled_order(
    shared: Stack, season: list[dict[str, Any]]
) -> None:
    assert stored_daily(shared) == as_float(daily_truth(season, TZ))
    assert stored_passes(shared) == passes_truth(season, TZ)


def test_events_before_their_district_is_configured_appear_once_it_is(
    shared: Stack, late_events: list[dict[str, Any]]
) -> None:
    assert stored_daily(shared, LATE) == as_float(daily_truth(late_events, TZ))


def test_a_worker_killed_five_times_ends_exactly_equal_to_the_truth(
    stack: Stack, season: list[dict[str, Any]]
) -> None:
    rng = random.Random(99)
    stack.start_worker()
    import_roster(stack)
    ends = produce_events(stack, season, batch_share=0.3, seed=2)
    for _ in range(5):
        time.sleep(rng.uniform(0.2, 2.5))
        assert stack.kill_worker() == -9
        stack.start_worker()
    wait_consumed(stack, ends)
    assert stack.stop_worker() == 0
    assert stored_daily(stack) == as_float(daily_truth(season, TZ))
    assert stored_passes(stack) == passes_truth(season, TZ)
