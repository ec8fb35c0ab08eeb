"""Student Data Export CSV: the header, cell formatting and formula-injection-safe writing."""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterable, Sequence
from datetime import date
from fractions import Fraction
from typing import TextIO

__all__ = [
    "CORRECTED_HEADER",
    "EXPORT_HEADER",
    "export_header",
    "fmt_average",
    "fmt_bool",
    "fmt_date",
    "fmt_teachers",
    "neutralize",
    "write_rows",
]

# Byte for byte as the export document lists them, including its typos
# ("infomration", the space in "below_ grade_level_pass_rate") and its missing
# benchmark_2_instructional_level column.
EXPORT_HEADER: tuple[str, ...] = (
    "First Name", "Last Name", "Username", "student_information_number",
    "alt_student_infomration_number", "grade_level", "is_active", "is_ell", "is_iep",
    "learning_environment", "school", "teachers",
    "benchmark_1_performance_level", "benchmark_1_instructional_level",
    "benchmark_1_quantile_measure", "benchmark_1_date", "benchmark_1_percentile_rank",
    "benchmark_1_nce",
    "benchmark_2_performance_level", "benchmark_2_quantile_measure", "benchmark_2_date",
    "benchmark_2_percentile_rank", "benchmark_2_nce",
    "benchmark_3_performance_level", "benchmark_3_instructional_level",
    "benchmark_3_quantile_measure", "benchmark_3_date", "benchmark_3_percentile_rank",
    "benchmark_3_nce",
    "most_recent_benchmark_performance_level", "lessons_attempted", "total_lessons_passed",
    "on_grade_level_pass_rate", "below_ grade_level_pass_rate", "lessons_passed_by_pre_quiz",
    "pre_quiz_average", "post_quiz_average", "problems_attempted", "earned_points",
    "earned_tokens", "math_helps", "live_helps", "total_math_time", "school_time",
    "evening_weekend_time",
)  # fmt: skip

_SPELLING_FIXES = {
    "alt_student_infomration_number": "alt_student_information_number",
    "below_ grade_level_pass_rate": "below_grade_level_pass_rate",
}
# Opt-in corrected spellings. Column set and order are unchanged (no benchmark_2
# instructional level is added), so both headers describe the same rows.
CORRECTED_HEADER: tuple[str, ...] = tuple(_SPELLING_FIXES.get(h, h) for h in EXPORT_HEADER)

# OWASP "CSV injection": these leading characters make spreadsheets evaluate a cell.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_STARTS = frozenset(_FORMULA_PREFIXES)
_PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def export_header(*, corrected: bool = False) -> tuple[str, ...]:
    return CORRECTED_HEADER if corrected else EXPORT_HEADER


def neutralize(cell: str) -> str:
    """Prefix ``'`` to cells a spreadsheet would run as a formula; plain numbers stay as is."""
    if cell.startswith(_FORMULA_PREFIXES) and not _PLAIN_NUMBER.fullmatch(cell):
        return "'" + cell
    return cell


def fmt_bool(value: bool) -> str:
    return "True" if value else "False"


def fmt_date(value: date | None) -> str:
    """ISO ``YYYY-MM-DD``, or empty when there is no date."""
    return "" if value is None else value.isoformat()


def fmt_teachers(names: Iterable[tuple[str, str]]) -> str:
    """``First Last;First Last`` from ``(first, last)`` pairs, deduplicated, by last then first."""
    unique = set(names)
    ordered = sorted(unique, key=lambda n: (n[1].casefold(), n[0].casefold(), n[1], n[0]))
    return ";".join(f"{first} {last}".strip() for first, last in ordered)


def fmt_average(total: float, count: int) -> str:
    """Mean of ``count`` percent scores summing to ``total``, as a whole percent, rounded half
    up (80.5 -> 81); empty when nothing was taken."""
    if count < 0:
        raise ValueError(f"count must not be negative: {count}")
    if count == 0:
        return ""
    if isinstance(total, int) or total.is_integer():
        # floor(t / c + 1/2) == floor((2t + c) / 2c), in integers: the usual case.
        return str((2 * int(total) + count) // (2 * count))
    mean = Fraction(total) / count  # exact, so .5 ties are real ties
    return str(math.floor(mean + Fraction(1, 2)))


def write_rows(
    rows: Iterable[Sequence[str]], out: TextIO, header: Sequence[str] | None = None
) -> int:
    """Write RFC 4180 CSV (CRLF, minimal quoting), neutralising every cell; returns data rows.

    With ``header`` it is written first and every row must have the same width.
    """
    writer = csv.writer(out, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    width = None if header is None else len(header)
    if header is not None:
        writer.writerow([neutralize(h) for h in header])
    written = 0
    starts, number, write = _FORMULA_STARTS, _PLAIN_NUMBER.fullmatch, writer.writerow
    for row in rows:
        if width is not None and len(row) != width:
            raise ValueError(f"row {written + 1} has {len(row)} cells, header has {width}")
        if not all(type(cell) is str for cell in row):
            bad = next(type(c).__name__ for c in row if type(c) is not str)
            raise TypeError(f"CSV cells must be formatted strings, got {bad}")
        # neutralize(), inlined: this loop runs once per cell of a 100k-row export.
        write([("'" + c if c[:1] in starts and not number(c) else c) for c in row])
        written += 1
    return written
