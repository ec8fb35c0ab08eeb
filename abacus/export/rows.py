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
_I = {name: i for i, name in enumerate(EXPORT_COLUMNS)}


def _num(value: Any) -> str:
    return str(int(value))


class RowFormatter:
    """Cells for one district's export; built once per export (cut scores, columns)."""

    def __init__(self, config: DistrictConfig) -> None:
        self.cuts: CutScores = config.cut_score_table()
        self.username_at = DISTRICT_DATA_COLUMNS.index(config.username_column)
        self.alt_at = DISTRICT_DATA_COLUMNS.index(config.alt_student_number_column)

    def cells(self, row: Sequence[Any]) -> list[str]:
        r = {name: row[i] for name, i in _I.items()}
        grade: str = r["grade"]
        environment: str = r["environment"]
        g3 = bool(r["ever_g3"]) or environment == "g3plus"
        prek2 = bool(r["ever_prek2"]) or environment == "prek2"
        passed = int(r["passed"] or 0)
        on_grade = int(r["passed_on_grade"] or 0)
        g3_only = (lambda v: v) if g3 else (lambda v: "")
        return [
            r["first_name"],
            r["last_name"],
            r["district_data"][self.username_at],
            r["student_id"],
            r["district_data"][self.alt_at],
            grade,
            fmt_bool(bool(r["is_active"])),
            fmt_bool(bool(r["is_ell"])),
            fmt_bool(bool(r["is_iep"])),
            ENVIRONMENT_LABELS[environment],
            r["building"],
            fmt_teachers(r["teachers"] or []),
            *self._benchmarks(grade, r["benchmarks"] or []),
            _num(r["lessons_started"]),
            _num(passed),
            _num(on_grade),
            _num(passed - on_grade),
            g3_only(_num(r["passed_by_pre"] or 0)),
            g3_only(fmt_average(r["pre_sum"], int(r["pre_count"]))),
            g3_only(fmt_average(r["post_sum"], int(r["post_count"]))),
            _num(r["problems"]),
            g3_only(_num(r["points"])),
            _num(r["tokens"]) if prek2 else "",
            g3_only(_num(r["math_helps"])),
            g3_only(_num(r["live_helps"])),
            format_hhmm(int(r["school_ms"]) + int(r["evening_ms"])),
            format_hhmm(int(r["school_ms"])),
            format_hhmm(int(r["evening_ms"])),
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
