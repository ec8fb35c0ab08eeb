"""`abacus bench privacy --quick` runs end to end and writes its JSON (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_quick_privacy_bench_deletes_verifies_and_writes_results(tmp_path: Path) -> None:
    # A subprocess: chDB allows one data path per process, never the pytest process.
    out = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "abacus", "bench", "privacy", "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    [path] = out.glob("privacy-*.json")
    result = json.loads(path.read_text())
    single, bulk, district = result["runs"]
    assert all(run["verified"] for run in result["runs"])
    # A student has 30 days x (3 events + 3 daily + 2 lesson facts) and their roster rows.
    assert single["rows_removed"] >= 30 * 8 + 2
    assert bulk["rows_removed"] >= 100 * single["rows_removed"] * 0.9
    assert district["rows_removed"] > bulk["rows_removed"]
    assert all(run["baseline_s"] > 0 for run in result["runs"])
    assert result["table_rows"]["events"] == result["table_rows"]["daily_facts"]
