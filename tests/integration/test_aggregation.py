"""Aggregates in ClickHouse equal an independent truth: duplicates, disorder, crashes.

Both what exports read (the rollups: daily, monthly, lesson) and the facts they are built
from are checked against the truth, field by field."""

from __future__ import annotations

import csv
import random
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from abacus.aggregation.queries import DAILY_TOTALS_SQL, PASSES_SQL
from abacus.embedded.broker import EmbeddedBroker
from abacus.simulator import SimStudent, SimulationConfig, simulate
from tests.support.produce import produce_events, wait_consumed
from tests.support.stack import Stack, wait_until
from tests.support.truth import METRICS, daily_truth, monthly_truth, passes_truth

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "district"
DISTRICT = "maple-valley"
TZ = "America/Chicago"  # examples/district/district.toml
RANGE = {"start": "2025-08-01", "end": "2026-11-22"}
_SUMS = ", ".join(METRICS)
# What exports read: the rollups (abacus/aggregation/rollups.py), read back plainly here.
ROLLUP_DAILY_SQL = f"""
SELECT student_id, local_date, {_SUMS} FROM abacus.daily_rollups FINAL
WHERE district_id = {{district:String}} AND local_date BETWEEN {{start:Date}} AND {{end:Date}}
"""
ROLLUP_PASSES_SQL = """
SELECT student_id, lesson_id, pass.local_date, pass.at, pass.kind, pass.grade, ''
FROM abacus.lesson_rollups FINAL ARRAY JOIN passes AS pass
WHERE district_id = {district:String} AND pass.local_date BETWEEN {start:Date} AND {end:Date}
"""
MONTHLY_SQL = f"""
SELECT student_id, month, {_SUMS},
       arraySort(arrayMap(p -> (toString(p.local_date), p.by_pre, p.grade_rank), passes))
FROM abacus.monthly_rollups FINAL
WHERE district_id = {{district:String}} AND month BETWEEN {{start:Date}} AND {{end:Date}}
"""


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
    stack: Stack, district: str = DISTRICT, source: str = "rollups"
) -> dict[tuple[str, date], dict[str, float]]:
    sql = ROLLUP_DAILY_SQL if source == "rollups" else DAILY_TOTALS_SQL.format(db="abacus")
    rows = stack.query(sql, district=district, **RANGE)
    out = {}
    for sid, day, *values in rows:
        metrics = dict(zip(METRICS, (float(v) for v in values), strict=True))
        if any(metrics.values()):
            out[(sid, date.fromisoformat(day))] = metrics
    return out


def stored_passes(
    stack: Stack, district: str = DISTRICT, source: str = "rollups"
) -> dict[str, list[tuple[date, str, str]]]:
    sql = ROLLUP_PASSES_SQL if source == "rollups" else PASSES_SQL.format(db="abacus")
    rows = stack.query(sql, district=district, **RANGE)
    out: dict[str, list[tuple[date, str, str]]] = {}
    for sid, _lesson, day, _at, kind, grade, _product in rows:
        out.setdefault(sid, []).append((date.fromisoformat(day), kind, grade))
    return {k: sorted(v) for k, v in out.items()}


def stored_months(stack: Stack, district: str = DISTRICT) -> dict[tuple[str, date], Any]:
    out = {}
    for sid, month, *values, passes in stack.query(MONTHLY_SQL, district=district, **RANGE):
        metrics = dict(zip(METRICS, (float(v) for v in values), strict=True))
        if any(metrics.values()) or passes:
            out[(sid, date.fromisoformat(month))] = (metrics, [tuple(p) for p in passes])
    return out


def expected_months(events: list[dict[str, Any]]) -> dict[tuple[str, date], Any]:
    months = monthly_truth(daily_truth(events, TZ), passes_truth(events, TZ))
    return {
        key: ({m: float(v) for m, v in metrics.items()}, passes)
        for key, (metrics, passes) in months.items()
    }


def assert_exact(stack: Stack, events: list[dict[str, Any]], district: str = DISTRICT) -> None:
    """Rollups, then the facts they come from, field by field against the truth."""
    daily, passes = as_float(daily_truth(events, TZ)), passes_truth(events, TZ)
    assert stored_daily(stack, district) == daily
    assert stored_passes(stack, district) == passes
    assert stored_months(stack, district) == expected_months(events)
    assert stored_daily(stack, district, "facts") == daily
    assert stored_passes(stack, district, "facts") == passes


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
    and events of a district configured only after they were stored. The season comes in
    two waves: the first is built into the rollups when its days close, the second (its
    days long closed, duplicates of the first among it) only through late keys."""
    stack = Stack(broker.bootstrap, tmp_path_factory.mktemp("aggregation-shared"))
    stack.start_worker()
    import_roster(stack)
    lone = passing_completions(season)
    held = {e["event_id"] for e in lone}
    sent = [e for e in season if e["event_id"] not in held]
    first, second = sent[: len(sent) // 2], sent[len(sent) // 2 :]
    first += random.Random(5).sample(second, len(second) // 10)  # sent again with `second`
    wait_consumed(stack, produce_events(stack, first, batch_share=0.5))
    stack.wait_rollups()
    ends = produce_events(stack, second, batch_share=0.5, seed=4)
    late_ends = produce_events(stack, late_events, seed=3)
    wait_consumed(stack, {p: max(ends.get(p, 0), late_ends.get(p, 0)) for p in {*ends, *late_ends}})
    import_roster(stack, LATE)
    unique = len({e["event_id"] for e in late_events})
    wait_until(
        lambda: stack.metric_sum("abacus_pending_events_resolved_total") >= unique,
        60,
        "pending events resolved",
    )
    stack.wait_rollups()
    # Last, each in a batch of its own: a passing lesson_completed, a lesson fact with no
    # daily fact, whose (student, lesson) rollup was built without it.
    for event in lone:
        wait_consumed(stack, produce_events(stack, [event]))
    stack.wait_rollups()
    assert stack.stop_worker() == 0
    yield stack
    stack.close()


def passing_completions(events: list[dict[str, Any]], n: int = 3) -> list[dict[str, Any]]:
    """``n`` lesson_completed events that each make a pass (the truth's passes differ
    without them)."""
    by_student: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        by_student.setdefault(e["student_id"], []).append(e)
    out: list[dict[str, Any]] = []
    for event in events:
        if event["event_type"] != "lesson_completed" or any(
            e["event_id"] == event["event_id"] for e in out
        ):
            continue
        mine = by_student[event["student_id"]]
        without = [e for e in mine if e["event_id"] != event["event_id"]]
        if passes_truth(mine, TZ) != passes_truth(without, TZ):
            out.append(event)
            if len(out) == n:
                break
    assert len(out) == n, "the season has passing completions"
    return out


def test_aggregates_equal_the_truth_with_duplicates_and_shuffled_order(
    shared: Stack, season: list[dict[str, Any]]
) -> None:
    assert_exact(shared, season)


def test_events_before_their_district_is_configured_appear_once_it_is(
    shared: Stack, late_events: list[dict[str, Any]]
) -> None:
    assert_exact(shared, late_events, LATE)


def test_a_worker_killed_five_times_ends_exactly_equal_to_the_truth(
    stack_factory: Callable[..., Stack], season: list[dict[str, Any]]
) -> None:
    # Killed on purpose, maybe several times on the same batch: not a poison batch.
    stack = stack_factory(ABACUS_POISON_ATTEMPTS="100", ABACUS_LOG_LEVEL="debug")
    rng = random.Random(99)
    stack.start_worker()
    import_roster(stack)
    ends = produce_events(stack, season, batch_share=0.3, seed=2)
    for _ in range(5):
        time.sleep(rng.uniform(0.2, 2.5))
        assert stack.kill_worker() == -9
        stack.start_worker()
    wait_consumed(stack, ends)
    stack.wait_rollups()  # late keys written before a kill are rebuilt after the restart
    assert stack.stop_worker() == 0
    assert_exact(stack, season)
