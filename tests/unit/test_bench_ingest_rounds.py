"""`abacus bench ingest --rounds N`: each round's ratios against its own loader runs, and
the rows as medians over the rounds (synthetic run results, no broker)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from abacus.bench.ingest import _report, _round

EVENTS = 120_000


def _worker(seconds: float, rss: float, **more: Any) -> dict[str, Any]:
    return {
        "seconds": seconds,
        "cpu_seconds": 1.5 * seconds,  # 1.5 cores busy
        "cpu_seconds_each": [0.5 * seconds, 1.0 * seconds],  # worker, ingest processes
        "kernel_seconds": 0.25 * seconds,
        "peak_rss_mb": rss,
        "peak_rss_each_mb": [rss - 200, 100.0, 100.0],
        "killed_processes": 0,
        "fresh_p50_s": 0.3,
        "fresh_p99_s": 0.9,
        "fresh_records_per_s": 500.0,
        "fresh_records": 5000.0,
        "pending_resolved": 0.0,
        "window": [1000.0, 1000.0 + seconds],  # epoch seconds
    } | more


def _a_round(loads: tuple[float, float], facts: tuple[float, float], product: float) -> Any:
    results = {
        "facts-only-1": _worker(facts[0], 800.0),
        "product": _worker(product, 900.0, rollups_seconds=product + 2),
        "facts-only-2": _worker(facts[1], 810.0),
    }
    loaded = [
        {"events": EVENTS, "seconds": s, "cpu_seconds": 1.2 * s, "kernel_seconds": 0.1 * s}
        for s in loads
    ]
    return _round(results, EVENTS, loaded)


def test_a_round_brackets_both_sides() -> None:
    r = _a_round(loads=(1.0, 3.0), facts=(2.0, 4.0), product=4.0)
    # Each side: events over the mean time of its runs before and after.
    assert r["baseline_events_per_s"] == EVENTS / 2.0
    assert [b["events_per_s"] for b in r["baseline_runs"]] == [EVENTS / 1.0, EVENTS / 3.0]
    assert r["facts_only_events_per_s"] == EVENTS / 3.0
    assert r["product_ratio"] == pytest.approx(2.0 / 4.0)
    assert r["facts_only_ratio"] == pytest.approx(2.0 / 3.0)
    assert r["rollup_cost_ratio"] == pytest.approx(3.0 / 4.0)
    assert r["rollups_complete_seconds"] == 6.0
    # Each worker run's window goes with it, to line it up with what else was measured.
    assert r["product_window"] == [1000.0, 1004.0]
    assert [f["window"] for f in r["facts_only_runs"]] == [[1000.0, 1002.0], [1000.0, 1004.0]]


def test_rows_are_medians_over_the_rounds(tmp_path: Path) -> None:
    rounds = [
        _a_round(loads=(1.0, 1.0), facts=(1.0, 1.0), product=1.0),  # ratio 1.0
        _a_round(loads=(1.0, 1.0), facts=(1.0, 1.0), product=2.0),  # ratio 0.5
        _a_round(loads=(2.0, 2.0), facts=(2.0, 2.0), product=2.5),  # ratio 0.8
    ]
    rounds[2]["peak_rss_mb"] = 1200.0
    rounds[2]["peak_rss_each_mb"] = [1000.0, 100.0, 100.0]
    _report(rounds, EVENTS, 2_400, True, tmp_path, 1.0)
    [written] = [json.loads(p.read_text()) for p in tmp_path.glob("ingest-batch-*.json")]
    baseline, facts, product = written["rows"]
    assert all("median of 3 rounds" in row["path"] for row in written["rows"])
    assert baseline["events_per_s"] == EVENTS / 1.0
    assert product["events_per_s"] == EVENTS / 2.0
    assert product["ratio"] == pytest.approx(0.8)  # the median of each round's own ratio
    assert written["rollup_cost_ratio"] == pytest.approx(0.8)
    assert facts["ratio"] == 1.0
    # Memory: the highest round, not a median.
    assert product["peak_rss_mb"] == 1200.0
    assert written["peak_rss_each_mb"] == [1000.0, 100.0, 100.0]
    assert len(written["rounds"]) == 3


def test_cpu_per_event_and_cores_of_each_side() -> None:
    r = _a_round(loads=(1.0, 3.0), facts=(2.0, 4.0), product=4.0)
    # The loader: 1.2 + 3.6 CPU seconds over 2 x EVENTS events and 4 s.
    assert r["baseline_cpu_us_per_event"] == pytest.approx(4.8 / (2 * EVENTS) * 1e6)
    assert r["baseline_cores"] == pytest.approx(1.2)
    assert r["facts_only_cpu_us_per_event"] == pytest.approx(9.0 / (2 * EVENTS) * 1e6)
    assert r["product_cpu_us_per_event"] == pytest.approx(6.0 / EVENTS * 1e6)
    assert r["product_cores"] == pytest.approx(1.5)
    assert r["product_cpu_us_per_event_each"] == pytest.approx([2e6 / EVENTS, 4e6 / EVENTS])
    assert r["facts_only_cpu_us_per_event_each"] == pytest.approx([1.5e6 / EVENTS, 3e6 / EVENTS])
    # Of it, the kernel's: the loader 0.1 + 0.3 s, the facts-only runs 0.5 + 1.0, the product 1.
    assert r["baseline_kernel_us_per_event"] == pytest.approx(0.4 / (2 * EVENTS) * 1e6)
    assert r["facts_only_kernel_us_per_event"] == pytest.approx(1.5 / (2 * EVENTS) * 1e6)
    assert r["product_kernel_us_per_event"] == pytest.approx(1.0 / EVENTS * 1e6)


def test_rows_carry_the_median_cpu_of_each_side(tmp_path: Path) -> None:
    rounds = [_a_round(loads=(s, s), facts=(s, s), product=s) for s in (1.0, 2.0, 4.0)]
    rounds[0]["product_cores"] = 1.9
    _report(rounds, EVENTS, 2_400, False, tmp_path, 1.0)
    [written] = [json.loads(p.read_text()) for p in tmp_path.glob("ingest-single-*.json")]
    baseline, _, product = written["rows"]
    assert baseline["cpu_us_per_event"] == pytest.approx(1.2 * 2.0 / EVENTS * 1e6)
    assert baseline["cores"] == pytest.approx(1.2)
    assert product["cpu_us_per_event"] == pytest.approx(1.5 * 2.0 / EVENTS * 1e6)
    assert product["cores"] == pytest.approx(1.5)  # the median of 1.9, 1.5, 1.5
    assert baseline["kernel_us_per_event"] == pytest.approx(0.1 * 2.0 / EVENTS * 1e6)
    assert product["kernel_us_per_event"] == pytest.approx(0.25 * 2.0 / EVENTS * 1e6)


def test_the_ratio_at_equal_host_speed_scales_each_rate_by_its_windows_probe_time(
    tmp_path: Path,
) -> None:
    # The loader ran 1 s at probe 10 ms and 3 s at 14 ms (13 ms weighted by time); the
    # product in a window at 19.5 ms: 1.5 times slower CPUs than the loader's.
    loads: list[dict[str, Any]] = [
        {"events": EVENTS, "seconds": s, "cpu_seconds": s, "kernel_seconds": 0.0} for s in (1, 3)
    ]
    results = {
        "facts-only-1": _worker(2.0, 800.0, probe_ms=13.0),
        "product": _worker(4.0, 900.0, rollups_seconds=6.0, probe_ms=19.5),
        "facts-only-2": _worker(2.0, 800.0, probe_ms=None),  # too short for a probe
    }
    loads[0]["probe_ms"], loads[1]["probe_ms"] = 10.0, 14.0
    r = _round(results, EVENTS, loads)
    assert r["baseline_probe_ms"] == pytest.approx(13.0)
    assert r["product_probe_ms"] == 19.5
    assert r["facts_only_probe_ms"] == 13.0  # the window without a probe left out
    assert r["product_ratio"] == pytest.approx(0.5)
    assert r["product_ratio_at_equal_speed"] == pytest.approx(0.75)
    assert r["facts_only_ratio_at_equal_speed"] == pytest.approx(r["facts_only_ratio"])
    # The rows: the medians over the rounds that had probes.
    unprobed = _a_round(loads=(1.0, 1.0), facts=(1.0, 1.0), product=1.0)
    _report([r, unprobed], EVENTS, 2_400, True, tmp_path, 1.0)
    [written] = [json.loads(p.read_text()) for p in tmp_path.glob("ingest-batch-*.json")]
    baseline, _, product = written["rows"]
    assert product["ratio_at_equal_speed"] == pytest.approx(0.75)
    assert product["probe_ms"] == 19.5
    assert baseline["probe_ms"] == pytest.approx(13.0)
    assert unprobed["product_ratio_at_equal_speed"] is None
