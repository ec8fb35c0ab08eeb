"""Roster error reports: a CSV file for districts and a plain-text table for the console."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path

from abacus.domain.csvcells import neutralize
from abacus.roster.validation import RowError

__all__ = ["REPORT_COLUMNS", "error_report_csv", "format_error_table", "write_error_report"]

REPORT_COLUMNS = ("file", "line", "column", "value", "reason")


def _cells(error: RowError) -> tuple[str, str, str, str, str]:
    return (error.file, str(error.line), error.column, error.value, error.reason)


def error_report_csv(errors: Iterable[RowError]) -> str:
    """The report as CSV text (header + one row per error, CRLF line ends). A cell a
    spreadsheet would run as a formula is neutralised as in exports (a leading ``'``)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(REPORT_COLUMNS)
    writer.writerows(tuple(map(neutralize, _cells(error))) for error in errors)
    return out.getvalue()


def write_error_report(errors: Iterable[RowError], path: Path) -> Path:
    """Write the CSV report to `path` (UTF-8, parent directories created) and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(error_report_csv(errors), encoding="utf-8", newline="")
    return path


def _printable(text: str) -> str:
    # A stray tab or newline in a value must not break the table's alignment.
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def format_error_table(errors: Iterable[RowError], *, limit: int | None = None) -> str:
    """An aligned text table of the errors (at most `limit` rows, then a "more" line)."""
    rows = [tuple(_printable(cell) for cell in _cells(error)) for error in errors]
    if not rows:
        return "no errors"
    shown = rows if limit is None else rows[:limit]
    widths = [max(len(r[i]) for r in (REPORT_COLUMNS, *shown)) for i in range(len(REPORT_COLUMNS))]

    def line(cells: tuple[str, ...]) -> str:
        padded = (cell.ljust(width) for cell, width in zip(cells, widths, strict=True))
        return "  ".join(padded).rstrip()

    lines = [line(REPORT_COLUMNS), line(tuple("-" * w for w in widths))]
    lines.extend(line(row) for row in shown)
    if len(rows) > len(shown):
        lines.append(f"... and {len(rows) - len(shown)} more")
    return "\n".join(lines)
