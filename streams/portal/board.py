"""Every export request and its latest status, in the worker's memory for the portal's
lists (a poll reads memory, never the store), written through to `export_jobs`.

Fed by the portal when it queues a request and by the export consumer's status hook (the
worker hosts both), so requests made with `abacus export request` are listed too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from abacus.errors import StorageError
from abacus.export.jobs import ExportJobView
from abacus.export.request import ExportRequest
from abacus.store.store import Store

__all__ = ["ExportBoard"]

log = logging.getLogger(__name__)
_SAVED = frozenset({"accepted", "completed", "failed"})  # progress stays in memory


class ExportBoard:
    """Export jobs by (district, request id)."""

    def __init__(
        self,
        store: Store,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        known: Callable[[str], bool] = lambda _district: True,
    ) -> None:
        self.store = store
        self.clock = clock
        # Whether a district is configured: a request for one that is not (never was, or
        # deleted at the end of its contract) is refused by the consumer and listed nowhere,
        # so nothing of a deleted district is written again.
        self.known = known
        self._jobs: dict[tuple[str, str], ExportJobView] = {}

    def load(self) -> None:
        """At worker start (blocking): every stored job."""
        for job in self.store.load_export_jobs():
            self._jobs[(job.district_id, job.request_id)] = job
        log.info("%d export job(s) loaded", len(self._jobs))

    async def queued(self, request: ExportRequest) -> ExportJobView:
        """The portal sent ``request`` to `export-requests`."""
        job = ExportJobView.queued(request, self.clock())
        self._jobs[(job.district_id, job.request_id)] = job
        await self.store.asave_export_job(job)
        return job

    async def on_status(self, request: ExportRequest | None, doc: dict[str, Any]) -> None:
        """The export consumer's status hook (an unparsable record is nobody's job)."""
        if request is None:
            return
        key = (request.district_id, request.request_id)
        now = self.clock()
        before = self._jobs.get(key)
        if before is not None and (before.requester != request.requester or before.final):
            # A request id is its requester's for good, and a finished job stays finished:
            # a refused reuse of the id (another requester, another payload) changes nothing.
            return
        if before is None and not self.known(request.district_id):
            return
        before = before or ExportJobView.queued(request, now)
        job = before.with_status(doc, now)
        if job is before:
            return
        self._jobs[key] = job
        if job.status in _SAVED:
            try:
                await self.store.asave_export_job(job)
            except StorageError as exc:  # the export itself goes on; the list is in memory
                log.error("could not save export job %s: %s", job.request_id, exc)

    def forget(self, district_id: str) -> None:
        """A district deleted at the end of its contract: its jobs are gone from the store."""
        for key in [k for k in self._jobs if k[0] == district_id]:
            del self._jobs[key]

    def get(self, district_id: str, request_id: str) -> ExportJobView | None:
        return self._jobs.get((district_id, request_id))

    def listing(
        self, district_id: str, requester: str | None = None, limit: int = 100
    ) -> list[ExportJobView]:
        """A district's jobs (one requester's when given), newest first."""
        jobs = [
            j
            for (d, _), j in self._jobs.items()
            if d == district_id and (requester is None or j.requester == requester)
        ]
        jobs.sort(key=lambda j: j.requested_at, reverse=True)
        return jobs[:limit]
