"""`abacus bench ops` runs end to end: a baseline worker and one with the lag monitor and
/ops polled, on the same pre-loaded topic, and their ratio (no timing assertions)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_bench_ops_reports_both_paths_and_their_ratio(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "abacus", "bench", "ops", "--events", "4000", "--rounds", "1",
         "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [result] = [json.loads(p.read_text()) for p in tmp_path.glob("ops-*.json")]
    baseline, product = result["rows"]
    assert baseline["path"].startswith("baseline")
    assert product["path"].startswith("lag monitor + /ops")
    assert baseline["events"] == product["events"] == 4000
    assert baseline["ratio"] == 1.0
    assert result["ratio"] == product["ratio"] > 0
    assert product["ops_polls_failed"] == 0  # every poll answered 200 with the page
    assert baseline["worker_cpu_s"] > 0
    assert product["worker_cpu_s"] > 0
    assert "ratio" in proc.stdout
