"""`abacus bench freshness --quick` runs both lane modes end to end and writes its JSON
(no timing asserted: the figures are for the README, measured on a quiet machine)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_quick_freshness_bench_measures_both_lane_modes(tmp_path: Path) -> None:
    # A subprocess: chDB allows one data path per process, never the pytest process.
    done = subprocess.run(
        [sys.executable, "-m", "abacus", "bench", "freshness", "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    [path] = tmp_path.glob("freshness-*.json")
    result = json.loads(path.read_text())
    assert [row["lanes"] for row in result["rows"]] == ["shared", "separate"]
    for row in result["rows"]:
        assert row["export_rows"] == result["students"] == 2_000
        # Records were stored and committed in both phases, so both p99s are measured.
        assert row["calm_records"] > 0
        assert row["export_records"] > 0
        assert row["calm_p99_s"] > 0
        assert row["export_p99_s"] > 0
    assert result["p99_during_export_separate_vs_shared"] > 0
