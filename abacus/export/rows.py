"""Format one export-query row into the document's 45 cells, in Python (pure).

The reference formatter: exports are formatted by ClickHouse (`abacus.export.lines`), and
that SQL is tested against this, byte for byte (`csv_lines`), on thousands of generated
rows; the in-memory stores of the unit tests format their rows with it. `RowFormatter`
unpacks the row's tuple as is and remembers, for the one export it is built for, the cells
that many rows share: a teacher list, a grade's level for a Quantile measure, a test
date's cell and percentile rule. The cells are those of the rules in `abacus.domain` exactly.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Sequence
from datetime import date
from typing import Any

from abacus.district import DISTRICT_DATA_COLUMNS, DistrictConfig
from abacus.domain.benchmarks import (
    CutScores,
    format_quantile,
    nce_from_percentile,
    percentile_shown,
    performance_level,
)
from abacus.domain.csvcells import fmt_average, fmt_bool, fmt_date, fmt_teachers, write_rows
from abacus.domain.timesplit import format_hhmm
from abacus.export.query import EXPORT_COLUMNS

__all__ = ["ENVIRONMENT_LABELS", "RowFormatter", "csv_lines"]

ENVIRONMENT_LABELS = {"prek2": "PreK-2", "g3plus": "Grade 3+"}
# The order `RowFormatter.cells` unpacks a row in: the query's, checked at import.
_UNPACKED = (
    "student_id", "first_name", "last_name", "grade", "building", "is_ell", "is_iep",
    "is_active", "district_data", "environment", "ever_g3", "ever_prek2", "school_ms",
    "evening_ms", "lessons_started", "pre_sum", "pre_count", "post_sum", "post_count",
    "problems", "points", "tokens", "math_helps", "live_helps", "passed", "passed_by_pre",
    "passed_on_grade", "benchmarks", "teachers",
)  # fmt: skip
if _UNPACKED != EXPORT_COLUMNS:
    raise RuntimeError("abacus.export.rows unpacks rows in another order than EXPORT_COLUMNS")
_NO_TEST = ("",) * 6  # a test 1 or 3 not taken (test 2 has one cell fewer)
_NO_TESTS = ("",) * 18  # no test taken: tests 1-3 and the most recent level


class RowFormatter:
    """Cells for one district's export; built once per export (cut scores, columns, and the
    caches of shared cells, which only ever hold this export's values)."""

    def __init__(self, config: DistrictConfig) -> None:
        self.cuts: CutScores = config.cut_score_table()
        self.username_at = DISTRICT_DATA_COLUMNS.index(config.username_column)
        self.alt_at = DISTRICT_DATA_COLUMNS.index(config.alt_student_number_column)
        self._teachers: dict[tuple[Any, ...], str] = {}
        self._levels: dict[tuple[str, int], tuple[str, str]] = {}
        self._dates: dict[tuple[str, Any], tuple[str, bool]] = {}

    def cells(self, row: Sequence[Any]) -> list[str]:
        """The document's 45 cells for one row of the export query (`EXPORT_COLUMNS`)."""
        (
            student_id, first_name, last_name, grade, building, is_ell, is_iep, is_active,
            district_data, environment, ever_g3, ever_prek2, school_ms, evening_ms,
            lessons_started, pre_sum, pre_count, post_sum, post_count, problems, points, tokens,
            math_helps, live_helps, passed, passed_by_pre, passed_on_grade, benchmarks, teachers,
        ) = row  # fmt: skip
        g3 = bool(ever_g3) or environment == "g3plus"
        prek2 = bool(ever_prek2) or environment == "prek2"
        passed = int(passed or 0)
        on_grade = int(passed_on_grade or 0)
        by_pre = str(int(passed_by_pre or 0))
        pre_average = fmt_average(pre_sum, int(pre_count))
        post_average = fmt_average(post_sum, int(post_count))
        points_cell = str(int(points))
        math_cell, live_cell = str(int(math_helps)), str(int(live_helps))
        if not g3:  # formatted first all the same, so a bad value fails either way
            by_pre = pre_average = post_average = points_cell = math_cell = live_cell = ""
        school, evening = int(school_ms), int(evening_ms)
        return [
            first_name,
            last_name,
            district_data[self.username_at],
            student_id,
            district_data[self.alt_at],
            grade,
            fmt_bool(bool(is_active)),
            fmt_bool(bool(is_ell)),
            fmt_bool(bool(is_iep)),
            ENVIRONMENT_LABELS[environment],
            building,
            self._teacher_cell(teachers),
            *self._benchmarks(grade, benchmarks or ()),
            str(int(lessons_started)),
            str(passed),
            str(on_grade),
            str(passed - on_grade),
            by_pre,
            pre_average,
            post_average,
            str(int(problems)),
            points_cell,
            str(int(tokens)) if prek2 else "",
            math_cell,
            live_cell,
            format_hhmm(school + evening),
            format_hhmm(school),
            format_hhmm(evening),
        ]

    def _teacher_cell(self, teachers: Sequence[tuple[str, str]] | None) -> str:
        """`fmt_teachers`, once per distinct list (a class's students share theirs)."""
        key = tuple(teachers) if teachers else ()
        cell = self._teachers.get(key)
        if cell is None:
            cell = self._teachers[key] = fmt_teachers(key)
        return cell

    def _benchmarks(self, grade: str, results: Sequence[Any]) -> Sequence[str]:
        """Columns for tests 1-3 (test 2 has no instructional level in the document) and the
        most recent performance level."""
        if not results:
            return _NO_TESTS
        by_number = {int(res[0]): res for res in results}
        out: list[str] = []
        latest: tuple[Any, str] | None = None
        for number in (1, 2, 3):
            res = by_number.get(number)
            if res is None:
                out += _NO_TEST[1:] if number == 2 else _NO_TEST
                continue
            _, quantile, level, percentile, taken_on, taken_at = res
            perf, quantile_cell = self._level(grade, int(quantile))
            date_cell, shown = self._date(grade, taken_on)
            if percentile is None or not shown:
                rank_cell = nce_cell = ""
            else:
                rank_cell, nce_cell = str(percentile), str(nce_from_percentile(percentile))
            if number == 2:
                out += (perf, quantile_cell, date_cell, rank_cell, nce_cell)
            else:
                out += (perf, level, quantile_cell, date_cell, rank_cell, nce_cell)
            if latest is None or taken_at > latest[0]:
                latest = (taken_at, perf)
        out.append(latest[1] if latest else "")
        return out

    def _level(self, grade: str, quantile: int) -> tuple[str, str]:
        """Performance level and Quantile cells (`benchmark_display`'s level: none for PreK
        nor for a grade the cut scores leave out)."""
        key = (grade, quantile)
        cells = self._levels.get(key)
        if cells is None:
            level = performance_level(quantile, grade, self.cuts)
            cells = self._levels[key] = (level or "", format_quantile(quantile))
        return cells

    def _date(self, grade: str, taken_on: date | str) -> tuple[str, bool]:
        """The test date's cell (ClickHouse gives a date; an ISO string is read) and whether
        the result's percentile is shown at the student's grade on that date."""
        key = (grade, taken_on)
        cells = self._dates.get(key)
        if cells is None:
            test_date = taken_on if isinstance(taken_on, date) else date.fromisoformat(taken_on)
            cells = self._dates[key] = (fmt_date(test_date), percentile_shown(grade, test_date))
        return cells


def csv_lines(rows: Iterable[Sequence[Any]], config: DistrictConfig) -> Iterator[str]:
    """Each row's CSV line as `write_rows` writes it (CRLF-terminated): what the export
    query's lines are (`abacus.export.lines`)."""
    formatter = RowFormatter(config)
    out = io.StringIO()
    for row in rows:
        out.seek(0)
        out.truncate()
        write_rows([formatter.cells(row)], out)
        yield out.getvalue()
