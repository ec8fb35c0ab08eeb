"""The district configs one worker knows, and what follows when one arrives or changes."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from abacus.district import DistrictConfig
from abacus.store.store import Store
from streams.metrics import Metrics
from streams.rollups import LateKeyLog

__all__ = ["DistrictRegistry"]

log = logging.getLogger(__name__)


class DistrictRegistry:
    """Configs loaded from the store at start and kept current by the roster consumer.

    Ingest derives local-day facts only for known districts; events of a district not yet
    configured are stored as pending, and their facts are derived once its config arrives.
    """

    def __init__(self, store: Store, metrics: Metrics, late: LateKeyLog | None = None) -> None:
        self.store = store
        self.metrics = metrics
        # Late facts' rollup keys (streams/rollups.py); None: no rollups (unit tests).
        self.late = late
        self._configs: dict[str, DistrictConfig] = {}

    @property
    def configs(self) -> Mapping[str, DistrictConfig]:
        """Read-only view, current at each look (the export consumer reads it)."""
        return self._configs

    def zones(self) -> dict[str, str]:
        """The IANA zone local days are counted in, per configured district."""
        return {d: config.timezone_for(None) for d, config in self._configs.items()}

    def load(self) -> None:
        """At worker start: every stored config, then finish any pending resolution a crash
        interrupted (blocking; before the worker runs)."""
        self._configs.update(self.store.load_districts())
        log.info("%d district config(s) loaded", len(self._configs))
        for district_id, zone in self.zones().items():
            seq = self.late.begin() if self.late else None
            self.metrics.pending_resolved.inc(self.store.resolve_pending(district_id, zone, seq))
            if self.late:
                self.late.stored(seq)

    async def update(self, config: DistrictConfig) -> None:
        """A config was stored (new or changed): know it, and derive its pending facts."""
        assert config.district_id is not None
        self._configs[config.district_id] = config
        await self.resolve_pending([config.district_id])

    def forget(self, district_id: str) -> None:
        """A district deleted at the end of its contract: its config is no longer known."""
        self._configs.pop(district_id, None)

    async def resolve_pending(self, district_ids: Iterable[str]) -> None:
        """Derive the pending facts of these districts (those configured by now)."""
        zones = self.zones()
        for district_id in sorted(set(district_ids) & set(zones)):
            seq = self.late.begin() if self.late else None
            resolved = await self.store.aresolve_pending(district_id, zones[district_id], seq)
            if self.late:
                self.late.stored(seq)
            self.metrics.pending_resolved.inc(resolved)
