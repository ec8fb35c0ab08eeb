"""Student Data Export CSV: the header, cell formatting and formula-injection-safe writing."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence
from datetime import date
from fractions import Fraction
from typing import TextIO

__all__ = [
    "CORRECTED_HEADER",
    "EXPORT_HEADER",
    "FORMULA_PREFIXES",
    "PLAIN_NUMBER",
    "export_header",
    "fmt_average",
    "fmt_bool",
    "fmt_date",
    "fmt_teachers",
    "neutralize",
    "teacher_display",
    "teacher_key",
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
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# A cell starting with one of them, in a row written as NUL + the cells joined on NUL (a NUL
# inside a cell can only make this match more often, never less).
_RISKY_CELL = re.compile("\x00[" + re.escape("".join(FORMULA_PREFIXES)) + "]")
PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def export_header(*, corrected: bool = False) -> tuple[str, ...]:
    return CORRECTED_HEADER if corrected else EXPORT_HEADER


def neutralize(cell: str) -> str:
    """Prefix ``'`` to cells a spreadsheet would run as a formula; plain numbers stay as is."""
    if cell.startswith(FORMULA_PREFIXES) and not PLAIN_NUMBER.fullmatch(cell):
        return "'" + cell
    return cell


def fmt_bool(value: bool) -> str:
    return "True" if value else "False"


def fmt_date(value: date | None) -> str:
    """ISO ``YYYY-MM-DD``, or empty when there is no date."""
    return "" if value is None else value.isoformat()


def teacher_key(name: tuple[str, str]) -> tuple[str, str, str, str]:
    """The order of ``(first, last)`` names in a teachers cell: by last, then first name,
    case-insensitively (``casefold``), ties by the exact spelling."""
    first, last = name
    return (last.casefold(), first.casefold(), last, first)


def teacher_display(name: tuple[str, str]) -> str:
    """One teacher as the cell shows them: ``First Last``."""
    return f"{name[0]} {name[1]}".strip()


def fmt_teachers(names: Iterable[tuple[str, str]]) -> str:
    """``First Last;First Last`` from ``(first, last)`` pairs, deduplicated, by last then first."""
    return ";".join(teacher_display(name) for name in sorted(set(names), key=teacher_key))


def fmt_average(total: float, count: int) -> str:
    """Mean of ``count`` percent scores summing to ``total``, as a whole percent, rounded half
    up (80.5 -> 81); empty when nothing was taken."""
    if count < 0:
        raise ValueError(f"count must not be negative: {count}")
    if count == 0:
        return ""
    # Exact, so .5 ties are real ties: floor(n / (d * count) + 1/2) in integers.
    n, d = (total if isinstance(total, float | int) else Fraction(total)).as_integer_ratio()
    return str((2 * n + d * count) // (2 * d * count))


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
    for row in rows:
        if width is not None and len(row) != width:
            raise ValueError(f"row {written + 1} has {len(row)} cells, header has {width}")
        try:
            # str.join and neutralize() only accept str: the type check costs nothing here.
            if _RISKY_CELL.search("\x00" + "\x00".join(row)) is None:
                writer.writerow(row)  # the usual row: nothing to neutralise
            else:
                writer.writerow([neutralize(cell) for cell in row])
        except (AttributeError, TypeError):
            bad = next(type(c).__name__ for c in row if not isinstance(c, str))
            raise TypeError(f"CSV cells must be formatted strings, got {bad}") from None
        written += 1
    return written
