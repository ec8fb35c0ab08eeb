"""Print a benchmark's result table and append it as JSON for history."""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["machine", "report"]


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def report(name: str, rows: list[dict[str, Any]], out_dir: Path, extra: dict[str, Any]) -> Path:
    """Show ``rows`` (dicts with the same keys) as a table; write them with context as JSON."""
    table = Table(title=f"abacus bench {name}")
    for key in rows[0]:
        table.add_column(key)
    for row in rows:
        table.add_row(*(f"{v:,.2f}" if isinstance(v, float) else str(v) for v in row.values()))
    Console(width=220).print(table)
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = out_dir / f"{name}-{stamp}.json"
    path.write_text(
        json.dumps(
            {"bench": name, "at": stamp, "machine": machine(), "rows": rows, **extra},
            indent=2,
            default=str,
        )
        + "\n"
    )
    Console().print(f"written {path}")
    return path
