"""Data retention: raw events by school year (each district's year and zone), audit rows by
age, and the job's audit trail."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from abacus.district import DistrictConfig
from abacus.privacy.plan import Step
from abacus.privacy.retention import events_cutoff, retention_steps
from abacus.settings import AbacusSettings, RetentionSettings
from abacus.store.store import StepOutcome
from streams.data_retention import RetentionService
from streams.metrics import Metrics

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
CHICAGO = DistrictConfig(
    district_id="maple", name="M", timezone="America/Chicago", school_year_start="08-15"
)
TOKYO = DistrictConfig(
    district_id="oak", name="O", timezone="Asia/Tokyo", school_year_start="04-01"
)


def test_events_are_kept_for_whole_school_years_in_the_districts_own_time() -> None:
    # Current school year began 2026-08-15 (local): keeping 2 years keeps from 2025-08-15.
    assert events_cutoff(CHICAGO, 2, NOW) == datetime(2025, 8, 15, 5, 0, tzinfo=UTC)
    assert events_cutoff(CHICAGO, 1, NOW) == datetime(2026, 8, 15, 5, 0, tzinfo=UTC)
    # Tokyo's year starts in April; midnight there is 15:00 UTC the day before.
    assert events_cutoff(TOKYO, 1, NOW) == datetime(2026, 3, 31, 15, 0, tzinfo=UTC)


def test_the_steps_cover_events_with_their_pending_marks_and_audit_rows() -> None:
    steps = retention_steps({"maple": CHICAGO}, RetentionSettings(), NOW)
    assert [(d, s.table.name) for d, _, s in steps] == [
        ("maple", "pending_facts"), ("maple", "events"), ("", "audit_log"),
    ]  # fmt: skip
    assert steps[1][2].parameters == {"d": "maple", "c": "2025-08-15 05:00:00.000"}
    assert steps[2][1] == datetime(2023, 12, 2, 12, 0, tzinfo=UTC)
    assert retention_steps({"maple": CHICAGO}, RetentionSettings(
        events_school_years=0, audit_days=0), NOW) == []  # fmt: skip


class FakeStore:
    def __init__(self) -> None:
        self.steps: list[Step] = []
        self.audited: list[Any] = []

    async def arun_step(self, step: Step, passes: int = 3) -> StepOutcome:
        self.steps.append(step)
        return StepOutcome(7 if step.table.name == "events" else 0, 0, 0)

    async def aaudit(self, *entries: Any) -> None:
        self.audited += entries


async def test_the_job_deletes_counts_and_audits_what_it_removed() -> None:
    store = FakeStore()
    metrics = Metrics()
    job = RetentionService(
        AbacusSettings(),
        store,
        {"maple": CHICAGO},
        metrics,
        now=lambda: NOW,  # type: ignore[arg-type]
    )
    assert await job.run_once() == {"events": 7}
    assert [s.table.name for s in store.steps] == ["pending_facts", "events", "audit_log"]
    [entry] = store.audited
    assert (entry.action, entry.district_id, entry.target) == (
        "retention.applied",
        "maple",
        "events",
    )
    assert "7 events row(s) before 2025-08-15" in entry.detail
    assert (
        metrics.registry.get_sample_value(
            "abacus_retention_deleted_rows_total", {"table": "events"}
        )
        == 7
    )
