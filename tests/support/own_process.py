"""Run a `tests.support` script in a process of its own (chDB allows one data path per
process) and read the JSON document it writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any


def json_result(module: str, folder: Path, timeout_s: float = 300) -> dict[str, Any]:
    """`python -m <module> <folder>/result.json`; it must exit 0 (else its stderr fails
    the test); the document it wrote."""
    out = folder / "result.json"
    done = subprocess.run(
        [sys.executable, "-m", module, str(out)],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text(encoding="utf-8"))
