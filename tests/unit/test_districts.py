"""The worker's district registry with a fake store: configs, zones, pending facts on arrival."""

from __future__ import annotations

from abacus.district import DistrictConfig
from streams.districts import DistrictRegistry
from streams.metrics import Metrics


class FakeStore:
    def __init__(self) -> None:
        self.resolved: list[tuple[str, str]] = []

    def load_districts(self) -> dict[str, DistrictConfig]:
        return {"a": config("a", "America/Chicago")}

    def resolve_pending(self, district_id: str, timezone: str, seq: int | None = None) -> int:
        self.resolved.append((district_id, timezone))
        return 2

    async def aresolve_pending(
        self, district_id: str, timezone: str, seq: int | None = None
    ) -> int:
        return self.resolve_pending(district_id, timezone)


def config(district_id: str, tz: str) -> DistrictConfig:
    return DistrictConfig(district_id=district_id, name=district_id, timezone=tz,
                          school_year_start="08-15")  # fmt: skip


async def test_known_districts_get_their_pending_facts_resolved() -> None:
    store, metrics = FakeStore(), Metrics()
    registry = DistrictRegistry(store, metrics)  # type: ignore[arg-type]
    registry.load()  # a crash may have left pending marks behind: resolved at start
    assert store.resolved == [("a", "America/Chicago")]
    assert registry.zones() == {"a": "America/Chicago"}

    await registry.update(config("b", "Europe/Berlin"))
    assert registry.configs["b"].timezone == "Europe/Berlin"
    assert store.resolved[-1] == ("b", "Europe/Berlin")

    await registry.resolve_pending({"b", "unknown"})  # an unconfigured district waits
    assert store.resolved[-1] == ("b", "Europe/Berlin")
    assert len(store.resolved) == 3
    assert metrics.registry.get_sample_value("abacus_pending_events_resolved_total") == 6
