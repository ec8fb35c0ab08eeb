"""Fact derivation against the independent reference, on a simulated population."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

import pytest

from abacus.aggregation.derive import DAILY_COLUMNS, derive_facts
from abacus.catalog import LESSON_FACTS
from abacus.simulator import SimStudent, SimulationConfig, simulate
from tests.support.events import sample_event
from tests.support.truth import METRICS, daily_truth

TZ = "America/Chicago"


@pytest.fixture(scope="module")
def population() -> list[dict[str, Any]]:
    students = [
        SimStudent(f"S{i:03d}", g) for i, g in enumerate(["PK", "K", "2", "3", "6", "9"] * 3)
    ]
    # Oct 20 - Nov 15 crosses the fall-back DST change (Nov 1) and several weekends.
    config = SimulationConfig(
        "d1",
        TZ,
        date(2026, 10, 20),
        date(2026, 11, 15),
        seed=3,
        duplicate_share=0.1,
        late_share=0.1,
    )
    return simulate(students, config)


def _sum_daily(rows: list[list[Any]]) -> dict[tuple[str, date], dict[str, float]]:
    idx = {name: i for i, name in enumerate(DAILY_COLUMNS)}
    seen: set[tuple[Any, Any]] = set()
    out: dict[tuple[str, date], dict[str, float]] = defaultdict(lambda: dict.fromkeys(METRICS, 0))
    for row in rows:
        key = (row[idx["event_id"]], row[idx["piece"]])
        if key in seen:  # the table's ReplacingMergeTree key does this in ClickHouse
            continue
        seen.add(key)
        for metric in METRICS:
            out[(row[idx["student_id"]], row[idx["local_date"]])][metric] += row[idx[metric]]
    return {k: v for k, v in out.items() if any(v.values())}


def test_daily_facts_equal_the_reference_with_duplicates_late_events_and_dst(
    population: list[dict[str, Any]],
) -> None:
    facts = derive_facts(population, lambda e: TZ)
    truth = {k: v for k, v in daily_truth(population, TZ).items() if any(v.values())}
    assert _sum_daily(facts.daily) == truth
    assert len(truth) > 200  # the population is not trivially small


def test_a_session_across_16_00_and_midnight_splits_into_days_and_kinds() -> None:
    from datetime import UTC, datetime

    # Fri 2026-11-06 15:30 to Sat 00:30 Chicago (CST, UTC-6).
    start = datetime(2026, 11, 6, 21, 30, tzinfo=UTC)
    end = datetime(2026, 11, 7, 6, 30, tzinfo=UTC)
    event = sample_event("session_ended", started_at=start, occurred_at=end)
    rows = derive_facts([event], lambda e: TZ).daily
    i = {name: n for n, name in enumerate(DAILY_COLUMNS)}
    assert [
        (r[i["local_date"]], r[i["piece"]], r[i["school_ms"]], r[i["evening_ms"]]) for r in rows
    ] == [
        (date(2026, 11, 6), 0, 30 * 60_000, 8 * 3_600_000),
        (date(2026, 11, 7), 1, 0, 30 * 60_000),
    ]


def test_lesson_facts_mark_passes_by_product_rule() -> None:
    i = {name: n for n, name in enumerate(LESSON_FACTS.columns)}
    cases = [
        (sample_event("quiz_submitted", quiz_kind="pre", score_percent=80.0), "pre", 1),
        (sample_event("quiz_submitted", quiz_kind="pre", score_percent=79.0), "pre", 0),
        (sample_event("quiz_submitted", quiz_kind="post", score_percent=70.0), "post", 1),
        (sample_event("quiz_submitted", product="prek2", score_percent=100.0), "pre", 0),
        (sample_event("lesson_completed", product="prek2"), "complete", 1),
        (sample_event("lesson_completed", product="prek2", tokens_collected=4), "complete", 0),
        (sample_event("lesson_completed", product="g3plus"), "complete", 0),
        (sample_event("lesson_started"), "start", 0),
    ]
    rows = derive_facts([c[0] for c in cases], lambda e: TZ).lessons
    assert [(r[i["kind"]], r[i["passed"]]) for r in rows] == [(c[1], c[2]) for c in cases]
