"""`abacus bench export --quick` runs end to end and writes its JSON (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_quick_export_bench_writes_results(tmp_path: Path) -> None:
    # A subprocess: chDB allows one data path per process, never the pytest process.
    out = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "abacus", "bench", "export", "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    [path] = out.glob("export-*.json")
    result = json.loads(path.read_text())
    assert result["students"] == 5_000
    assert result["days"] == 30
    assert result["table_rows"]["daily_facts"] == 5_000 * 30 * result["daily_rows_per_student_day"]
    # The rollups' export equals the facts' byte for byte (checked before any timing).
    assert result["rollups_equal_facts"] is True
    assert result["table_rows"]["daily_rollups"] == 5_000 * 30
    by_run = {row["run"]: row for row in result["rows"]}
    assert by_run["product"]["rows"] == by_run["baseline"]["rows"] == 5_000
    assert by_run["floor"]["rows"] == 5_000
    # The product again in a process of its own (a worker's export): same rows and bytes.
    fresh = by_run["product, fresh process"]
    assert fresh["rows"] == 5_000
    assert fresh["MB"] == by_run["product"]["MB"]
    assert 0 < fresh["peak RSS MB"] < 4096
    assert set(result["targets"]) >= {"product, fresh process: peak RSS <= 1 GiB"}
    assert by_run["product"]["ratio"] > 0
    assert by_run["product"]["ratio to floor"] > 0
