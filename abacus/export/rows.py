"""Format one export-query row into the document's 45 cells (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from abacus.district import DISTRICT_DATA_COLUMNS, DistrictConfig
from abacus.domain.benchmarks import CutScores, benchmark_display, format_quantile
from abacus.domain.csvcells import fmt_average, fmt_bool, fmt_date, fmt_teachers
from abacus.domain.timesplit import format_hhmm
from abacus.export.query import EXPORT_COLUMNS

__all__ = ["ENVIRONMENT_LABELS", "RowFormatter"]

ENVIRONMENT_LABELS = {"prek2": "PreK-2", "g3plus": "Grade 3+"}
_BOOL = {True: fmt_bool(True), False: fmt_bool(False)}
# `cells` unpacks a row by position: the query's columns, in this order.
_ORDER = (
    "student_id", "first_name", "last_name", "grade", "building", "is_ell", "is_iep",
    "is_active", "district_data", "environment", "ever_g3", "ever_prek2", "school_ms",
    "evening_ms", "lessons_started", "pre_sum", "pre_count", "post_sum", "post_count",
    "problems", "points", "tokens", "math_helps", "live_helps", "passed", "passed_by_pre",
    "passed_on_grade", "benchmarks", "teachers",
)  # fmt: skip
if EXPORT_COLUMNS != _ORDER:  # pragma: no cover - a guard for whoever edits the query
    raise ImportError("abacus.export.rows unpacks rows in an order the query no longer has")


class RowFormatter:
    """Cells for one district's export; built once per export (cut scores, columns)."""

    def __init__(self, config: DistrictConfig) -> None:
        self.cuts: CutScores = config.cut_score_table()
        self.username_at = DISTRICT_DATA_COLUMNS.index(config.username_column)
        self.alt_at = DISTRICT_DATA_COLUMNS.index(config.alt_student_number_column)

    def cells(self, row: Sequence[Any]) -> list[str]:
        (
            student_id, first_name, last_name, grade, building, is_ell, is_iep, is_active,
            district_data, environment, ever_g3, ever_prek2, school_ms, evening_ms,
            lessons_started, pre_sum, pre_count, post_sum, post_count, problems, points,
            tokens, math_helps, live_helps, passed, passed_by_pre, passed_on_grade,
            benchmarks, teachers,
        ) = row  # fmt: skip  # the order of EXPORT_COLUMNS (checked at import)
        g3 = ever_g3 or environment == "g3plus"
        passed = int(passed or 0)
        on_grade = int(passed_on_grade or 0)
        school_ms, evening_ms = int(school_ms), int(evening_ms)
        if g3:
            g3_cells = [
                str(int(passed_by_pre or 0)),
                fmt_average(pre_sum, int(pre_count)),
                fmt_average(post_sum, int(post_count)),
                str(int(problems)),
                str(int(points)),
            ]
        else:
            g3_cells = ["", "", "", str(int(problems)), ""]
        return [
            first_name,
            last_name,
            district_data[self.username_at],
            student_id,
            district_data[self.alt_at],
            grade,
            _BOOL[bool(is_active)],
            _BOOL[bool(is_ell)],
            _BOOL[bool(is_iep)],
            ENVIRONMENT_LABELS[environment],
            building,
            fmt_teachers(teachers) if teachers else "",
            *self._benchmarks(grade, benchmarks or ()),
            str(int(lessons_started)),
            str(passed),
            str(on_grade),
            str(passed - on_grade),
            *g3_cells,
            str(int(tokens)) if ever_prek2 or environment == "prek2" else "",
            str(int(math_helps)) if g3 else "",
            str(int(live_helps)) if g3 else "",
            format_hhmm(school_ms + evening_ms),
            format_hhmm(school_ms),
            format_hhmm(evening_ms),
        ]

    def _benchmarks(self, grade: str, results: Sequence[Any]) -> list[str]:
        """Columns for tests 1-3 (test 2 has no instructional level in the document) and the
        most recent performance level."""
        by_number = {int(res[0]): res for res in results}
        out: list[str] = []
        latest: tuple[Any, str] | None = None
        for number in (1, 2, 3):
            res = by_number.get(number)
            if res is None:
                out += [""] * (5 if number == 2 else 6)
                continue
            _, quantile, level, percentile, taken_on, taken_at = res
            test_date = taken_on if isinstance(taken_on, date) else date.fromisoformat(taken_on)
            cells = benchmark_display(grade, test_date, percentile, int(quantile), self.cuts)
            perf = cells.performance_level or ""
            block = [perf]
            if number != 2:
                block.append(level)
            block += [
                format_quantile(int(quantile)),
                fmt_date(test_date),
                "" if cells.percentile_rank is None else str(cells.percentile_rank),
                "" if cells.nce is None else str(cells.nce),
            ]
            out += block
            if latest is None or taken_at > latest[0]:
                latest = (taken_at, perf)
        out.append(latest[1] if latest else "")
        return out
