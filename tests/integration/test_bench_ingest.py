"""`abacus bench ingest` runs end to end and reports both paths (no timing assertions)."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest


def _processes_under(folder: Path) -> list[int]:
    """Processes whose ABACUS_HOME lies under ``folder`` (the benchmark's workers), or
    that write under it (its host-speed probes)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            environ = (entry / "environ").read_bytes() if entry.name.isdigit() else b""
            cmdline = (entry / "cmdline").read_bytes() if entry.name.isdigit() else b""
        except OSError:
            continue
        if f"ABACUS_HOME={folder}".encode() in environ or str(folder).encode() in cmdline:
            found.append(int(entry.name))
    return found


@pytest.mark.timeout(600)  # three worker runs (facts only, rollups, facts only) and the loader
def test_bench_ingest_reports_the_product_against_its_baseline(tmp_path: Path) -> None:
    bench_tmp = tmp_path / "tmp"  # the benchmark's homes, to look for what outlived it
    bench_tmp.mkdir()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "abacus",
            "bench",
            "ingest",
            "--events",
            "4000",
            "--fresh-seconds",
            "2",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
        env={**os.environ, "TMPDIR": str(bench_tmp)},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # Every worker and every process it started was gone before the benchmark returned.
    assert _processes_under(bench_tmp) == []
    [result] = [json.loads(p.read_text()) for p in tmp_path.glob("ingest-batch-*.json")]
    baseline, facts_only, product = result["rows"]
    assert baseline["events"] == facts_only["events"] == product["events"] == 4000
    # Rollup maintenance's cost: the same worker without it, in the same run.
    assert "without rollups" in facts_only["path"]
    assert result["rollup_cost_ratio"] == product["events_per_s"] / facts_only["events_per_s"]
    # Facts only before and after the rollups' run (A-B-A); the row is their mean time.
    assert result["run_order"] == ["facts-only-1", "product", "facts-only-2"]
    runs = result["facts_only_runs"]
    assert [r["run"] for r in runs] == ["facts-only-1", "facts-only-2"]
    assert facts_only["seconds"] == pytest.approx(statistics.fmean(r["seconds"] for r in runs))
    assert all(r["events_per_s"] > 0 for r in runs)
    # Every generated fact is late: the rollups catch up after (or as) ingest commits.
    assert result["rollups_complete_seconds"] >= product["seconds"]
    assert 0 < result["rollups_complete_ratio"] <= result["rollup_cost_ratio"]
    assert product["records"] == baseline["records"] < 4000  # SDK batch records
    # The loader ran before and after the workers, each time on exactly the run's records
    # (not the freshness phase's, which follow them on the first run's topic).
    [only] = result["rounds"]
    assert [b["events"] for b in only["baseline_runs"]] == [4000, 4000]
    assert baseline["events_per_s"] == pytest.approx(
        8000 / sum(b["seconds"] for b in only["baseline_runs"])
    )
    assert product["ratio"] > 0
    assert product["peak_rss_mb"] > 0
    # CPU time per event of each side, in its own timed window (a worker's with its ingest
    # processes'), and the cores it kept busy.
    assert all(row["cpu_us_per_event"] > 0 for row in (baseline, facts_only, product))
    assert only["baseline_cpu_us_per_event"] == baseline["cpu_us_per_event"]
    assert baseline["cores"] > 0
    assert product["cores"] > 0
    own, ingest = only["product_cpu_us_per_event_each"]
    assert own + ingest == pytest.approx(product["cpu_us_per_event"])
    assert ingest > 0  # the ingest processes did the decoding
    # Of it, the kernel's (system time): never more than all of it; some in every run
    # together (a short run's window may see no clock tick of it).
    sides = (baseline, facts_only, product)
    assert all(0 <= row["kernel_us_per_event"] <= row["cpu_us_per_event"] for row in sides)
    assert sum(row["kernel_us_per_event"] for row in sides) > 0
    # The worker, then its children (the ingest processes): the RSS reported is their sum.
    each = result["peak_rss_each_mb"]
    assert len(each) >= 2
    assert abs(sum(each) - product["peak_rss_mb"]) < 0.01
    assert 0 < product["fresh_p50_s"] <= product["fresh_p99_s"]
    assert result["freshness"]["records"] > 0
    # The district was configured before its events came: none went the pending path.
    assert result["pending_resolved"] == 0
    # The host's speed in each side's windows (probes pinned to each CPU; a window too
    # short for a probe has none), and the ratio had both sides run at the same speed.
    for run in only["baseline_runs"]:
        assert run["window"][1] - run["window"][0] == pytest.approx(run["seconds"], abs=1e-6)
    # Each worker run's window too, in the order they ran: facts only, product, facts only.
    first, second = (run["window"] for run in only["facts_only_runs"])
    assert first[1] < only["product_window"][0] < only["product_window"][1] < second[0]
    for run in only["facts_only_runs"]:
        assert run["window"][1] - run["window"][0] == pytest.approx(run["seconds"], abs=1e-6)
    sides = (only["baseline_probe_ms"], only["product_probe_ms"])
    assert all(ms is None or ms > 0 for ms in sides)
    if None not in sides:
        assert only["product_ratio_at_equal_speed"] == pytest.approx(
            only["product_ratio"] * sides[1] / sides[0]
        )
    assert not list(bench_tmp.glob("abacus-host-speed-*"))  # the probes' files went too
