"""The retention job: once a day the worker deletes raw events and audit rows older than
their retention (`abacus.privacy.retention`), with the same synchronous mutations as a
deletion, and says so in the audit trail."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from mode import Service

from abacus.audit import AuditEntry
from abacus.district import DistrictConfig
from abacus.errors import StorageError
from abacus.privacy.retention import retention_steps
from abacus.settings import AbacusSettings
from abacus.store.store import Store
from streams.metrics import Metrics

__all__ = ["RetentionService"]

log = logging.getLogger(__name__)


class RetentionService(Service):
    """Runs `run_once` ``first_run_s`` after start, then every ``interval_s``."""

    def __init__(
        self,
        settings: AbacusSettings,
        store: Store,
        districts: Mapping[str, DistrictConfig],
        metrics: Metrics,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__()
        self.settings = settings
        self.store = store
        self.districts = districts
        self.metrics = metrics
        self.now = now

    async def run_once(self) -> dict[str, int]:
        """Delete what is past its retention; rows removed per table."""
        removed: dict[str, int] = {}
        now = self.now()
        for district_id, cutoff, step in retention_steps(
            self.districts, self.settings.retention, now
        ):
            done = await self.store.arun_step(step)
            if not done.rows:
                continue
            table = step.table.name
            removed[table] = removed.get(table, 0) + done.rows
            self.metrics.retention_rows.labels(table).inc(done.rows)
            detail = f"{done.rows} {table} row(s) before {cutoff.isoformat()}"
            await self.store.aaudit(
                AuditEntry(now, district_id, "abacus", "retention.applied", table, detail)
            )
        if removed:
            log.info("retention deleted %s", removed)
        return removed

    @Service.task
    async def _every_interval(self) -> None:
        retention = self.settings.retention
        await self.sleep(retention.first_run_s)
        while not self.should_stop:
            try:
                await self.run_once()
            except StorageError as exc:  # tried again at the next interval
                log.warning("retention not applied: %s", exc)
            await self.sleep(retention.interval_s)
