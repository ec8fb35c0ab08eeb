"""`abacus bench ingest` runs end to end and reports both paths (no timing assertions)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.timeout(600)  # two worker runs (with and without rollups) and the loader
def test_bench_ingest_reports_the_product_against_its_baseline(tmp_path: Path) -> None:
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
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [result] = [json.loads(p.read_text()) for p in tmp_path.glob("ingest-batch-*.json")]
    baseline, facts_only, product = result["rows"]
    assert baseline["events"] == facts_only["events"] == product["events"] == 4000
    # Rollup maintenance's cost: the same worker without it, in the same run.
    assert "without rollups" in facts_only["path"]
    assert result["rollup_cost_ratio"] == product["events_per_s"] / facts_only["events_per_s"]
    # Every generated fact is late: the rollups catch up after (or as) ingest commits.
    assert result["rollups_complete_seconds"] >= product["seconds"]
    assert 0 < result["rollups_complete_ratio"] <= result["rollup_cost_ratio"]
    assert product["records"] == baseline["records"] < 4000  # SDK batch records
    assert product["ratio"] > 0
    assert product["peak_rss_mb"] > 0
    # The worker, then its children (the ingest processes): the RSS reported is their sum.
    each = result["peak_rss_each_mb"]
    assert len(each) >= 2
    assert abs(sum(each) - product["peak_rss_mb"]) < 0.01
    assert 0 < product["fresh_p50_s"] <= product["fresh_p99_s"]
    assert result["freshness"]["records"] > 0
    # The district was configured before its events came: none went the pending path.
    assert result["pending_resolved"] == 0
