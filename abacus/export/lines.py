"""The export's CSV lines, formatted by ClickHouse (pure: SQL text and its parameters).

`lines_sql` wraps any query that returns `EXPORT_COLUMNS` (the export query, or a test's
table) in one SELECT that turns each row into its finished CSV line, ending in CRLF: the
same 45 cells as `abacus.export.rows.RowFormatter` and `write_rows`, byte for byte. Every
value from the district's config or its roster (labels, District_Data columns, teacher
names) is a bound parameter from `line_params`; the text holds only the thresholds, as
integers.

What ClickHouse cannot do exactly is done in Python first, once per export:
- teacher lists sort by ``str.casefold`` (``ß`` is ``ss``): `teacher_order` ranks every
  distinct teacher name of the district in Python, and the query maps names to ranks.
  A name the ranks lack (a roster import landing mid-export) fails the query with
  `TEACHERS_CHANGED`; the store then reads the names again and retries.
- NCE needs the inverse normal: its 101 cells are a parameter (`nce_from_percentile`).
Rows `RowFormatter` refuses (a grade that is none, a percentile over 100, a quiz sum that
is not finite) fail the query the same way (`throwIf`), so no file has a wrong cell.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from abacus.district import DISTRICT_DATA_COLUMNS, DistrictConfig
from abacus.domain.benchmarks import (
    KINDERGARTEN_PERCENTILE_MONTHS,
    CutScores,
    nce_from_percentile,
)
from abacus.domain.csvcells import FORMULA_PREFIXES, PLAIN_NUMBER, teacher_display, teacher_key

__all__ = ["TEACHERS_CHANGED", "line_params", "lines_sql", "teacher_order"]

TEACHERS_CHANGED = "teacher names changed during the export"
# The query's name for a teacher: unique per (first, last) pair (lengths are in bytes).
_TEACHER_KEY = "concat(toString(length(p.1)), ':', p.1, p.2)"
_RE2_ESCAPES = {"\t": r"\t", "\r": r"\r", "-": r"\-", "\\": r"\\", "]": r"\]", "^": r"\^"}
_FORMULA_START = "^[" + "".join(_RE2_ESCAPES.get(c, c) for c in FORMULA_PREFIXES) + "]"
_MONTHS = ", ".join(str(m) for m in sorted(KINDERGARTEN_PERCENTILE_MONTHS))


def teacher_order(names: Iterable[tuple[str, str]]) -> dict[str, list[Any]]:
    """Parameters ranking each distinct ``(first, last)`` name as `fmt_teachers` orders them:
    the query's key for each, in order, and the cell text each stands for."""
    ordered = sorted(set(names), key=teacher_key)
    if not ordered:  # transform() wants arrays with a value: a key no name has
        return {"teacher_keys": [""], "teacher_ranks": [0], "teacher_cells": []}
    return {
        "teacher_keys": [f"{len(first.encode())}:{first}{last}" for first, last in ordered],
        "teacher_ranks": list(range(1, len(ordered) + 1)),
        "teacher_cells": [teacher_display(name) for name in ordered],
    }


def line_params(config: DistrictConfig, teachers: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Every parameter `lines_sql` binds besides the inner query's own."""
    cuts = config.cut_score_table().by_grade
    return {
        "username_at": DISTRICT_DATA_COLUMNS.index(config.username_column) + 1,
        "alt_at": DISTRICT_DATA_COLUMNS.index(config.alt_student_number_column) + 1,
        "cut_labels": [label for steps in cuts.values() for _, label in steps],
        "nce": [str(nce_from_percentile(p)) for p in range(101)],
        "formula_start": _FORMULA_START,
        "plain_number": "^(?:" + PLAIN_NUMBER.pattern + ")$",
        **teacher_order(teachers),
    }


def _text(cell: str) -> str:
    """A text cell as `write_rows` writes it: neutralised (a leading ``'``), then quoted
    when it must be. Quotes are doubled in every cell, which changes only cells that are
    quoted anyway. Only constants sit in branches, so ``cell`` is computed once."""
    neutral = (
        f"match({cell}, {{formula_start:String}}) AND NOT match({cell}, {{plain_number:String}})"
    )
    quote = f"if(multiSearchAny({cell}, [',', '\"', '\\r', '\\n']), '\"', '')"
    return f"concat({quote}, if({neutral}, '''', ''), replaceAll({cell}, '\"', '\"\"'), {quote})"


def _hhmm(ms: str) -> str:
    """`format_hhmm`: hours (two digits or more) and floored minutes."""
    minutes = f"intDiv({ms}, 60000)"
    hours, rest = f"intDiv({minutes}, 60)", f"({minutes} % 60)"
    return (
        f"concat(if({hours} < 10, '0', ''), toString({hours}), ':',"
        f" if({rest} < 10, '0', ''), toString({rest}))"
    )


def _average(total: str, count: str) -> str:
    """`fmt_average`: floor(total / count + 1/2), exactly (the float estimate is checked
    against (k ± 1/2) * count, which doubles hold exactly for these magnitudes)."""
    k = f"floor({total} / greatest({count}, 1) + 0.5)"
    exact = (
        f"if({total} < ({k} - 0.5) * {count}, {k} - 1,"
        f" if({total} >= ({k} + 0.5) * {count}, {k} + 1, {k}))"
    )
    # A sum that is no number converts to 0 here and fails the query in `refused`.
    number = f"if(isFinite({exact}) AND abs({exact}) < 1e15, {exact}, 0)"
    return f"if({count} = 0, '', toString(toInt64({number})))"


def _level(cuts: CutScores, quantile: str) -> str:
    """Where `performance_level` of ``quantile`` at the student's grade (``grade_at``, its
    place in the district's table) is in ``cut_labels`` (every grade's labels in a row):
    how many thresholds it reaches, at least the first. 0 (an empty cell) for a grade the
    table lacks, and for PreK."""
    branches, offset = [], 0
    for g, steps in enumerate(cuts.by_grade.values(), 1):
        reached = " + ".join(f"({quantile} >= {int(minimum)})" for minimum, _ in steps)
        branches.append(f"grade_at = {g}, {offset} + greatest(1, {reached})")
        offset += len(steps)
    return f"multiIf({', '.join(branches)}, 0)"


def _quantile(q: str) -> str:
    """`format_quantile`: ``EM150Q`` below zero, else ``420Q``."""
    return f"if({q} < 0, concat('EM', toString(-toInt64({q})), 'Q'), concat(toString({q}), 'Q'))"


def _test(number: int) -> str:
    """The cells of benchmark test ``number`` (test 2 has no instructional level)."""
    res, shown = f"test_{number}", f"shown_{number}"
    level = "" if number == 2 else f" {_text(f'{res}.3')},"
    hidden = f"isNull({res}.4) OR NOT {shown}"
    cells = (
        f"{_text(f'level_{number}')},{level} {_quantile(f'{res}.2')}, toString({res}.5),"
        f" if({hidden}, '', toString(assumeNotNull({res}.4))),"
        f" if({hidden}, '', {{nce:Array(String)}}[assumeNotNull({res}.4) + 1])"
    )
    empty = "," * (4 if number == 2 else 5)
    return f"if(has_{number}, concatWithSeparator(',', {cells}), '{empty}')"


def _test_aliases(cuts: CutScores) -> str:
    """Per test number: whether it was taken, its result, whether its percentile shows and
    its performance level; then the level of the most recent (the first of equally recent
    ones, as `RowFormatter` takes them). No lambdas: ClickHouse computes each alias once."""
    out = []
    for n in (1, 2, 3):
        at = f"indexOf(benchmarks.1, {n})"
        out += [
            f"{at} > 0 AS has_{n}",
            f"benchmarks[{at}] AS test_{n}",
            f"grade_norm != 'PK' AND (grade_norm != 'K' OR toMonth(test_{n}.5) IN ({_MONTHS}))"
            f" AS shown_{n}",
            f"{_level(cuts, f'test_{n}.2')} AS level_at_{n}",
            f"{{cut_labels:Array(String)}}[level_at_{n}] AS level_{n}",
        ]
    latest = (
        "multiIf(has_1 AND (NOT has_2 OR test_1.6 >= test_2.6)"
        " AND (NOT has_3 OR test_1.6 >= test_3.6), level_at_1,"
        " has_2 AND (NOT has_3 OR test_2.6 >= test_3.6), level_at_2, has_3, level_at_3, 0)"
    )
    out.append(f"{{cut_labels:Array(String)}}[{latest}] AS latest_level")
    return ",\n    ".join(out)


# What `RowFormatter` refuses: a percentile it would show over 100, and an average that
# is no number (scores are 0-100 once validated, so the bound only ever refuses garbage).
_PERCENTILE_REFUSED = " OR ".join(
    f"(has_{n} AND shown_{n} AND ifNull(test_{n}.4, 0) > 100)" for n in (1, 2, 3)
)
_AVERAGE_REFUSED = " OR ".join(
    f"({c} > 0 AND NOT (isFinite({s} / {c}) AND abs({s} / {c}) < 1e15))"
    for s, c in (("pre_sum", "pre_count"), ("post_sum", "post_count"))
)
_TAIL = (
    "toString(lessons_started)", "toString(passed)", "toString(passed_on_grade)",
    "toString(toInt64(passed) - toInt64(passed_on_grade))",
    "if(g3, toString(passed_by_pre), '')",
    f"if(g3, {_average('pre_sum', 'pre_count')}, '')",
    f"if(g3, {_average('post_sum', 'post_count')}, '')",
    "toString(problems)", "if(g3, toString(points), '')", "if(prek2, toString(tokens), '')",
    "if(g3, toString(math_helps), '')", "if(g3, toString(live_helps), '')",
    _hhmm("school_ms + evening_ms"), _hhmm("school_ms"), _hhmm("evening_ms"),
)  # fmt: skip


def lines_sql(inner: str, cuts: CutScores) -> str:
    """One CSV line per row of ``inner`` (a query returning `EXPORT_COLUMNS`), in the
    export's order (last name, first name, student id), for a district with ``cuts``."""
    head = ", ".join(
        _text(c)
        for c in (
            "first_name", "last_name", "district_data[{username_at:UInt8}]", "student_id",
            "district_data[{alt_at:UInt8}]", "grade",
        )
    )  # fmt: skip
    return f"""
WITH
    multiIf(upper(grade) IN ('K', 'KG'), 'K', upper(grade) = 'PK', 'PK',
            match(grade, '^[0-9]{{1,2}}$') AND toUInt8OrZero(grade) BETWEEN 1 AND 12,
            toString(toUInt8OrZero(grade)), '') AS grade_norm,
    indexOf([{", ".join(f"'{g}'" for g in cuts.by_grade)}], grade_norm) AS grade_at,
    ever_g3 != 0 OR environment = 'g3plus' AS g3,
    ever_prek2 != 0 OR environment = 'prek2' AS prek2,
    has_1 OR has_2 OR has_3 AS tested,
    {_test_aliases(cuts)},
    arrayMap(p -> transform({_TEACHER_KEY}, {{teacher_keys:Array(String)}},
                            {{teacher_ranks:Array(UInt32)}}, toUInt32(0)), teachers)
        AS teacher_ranks,
    arrayStringConcat(arrayMap(r -> {{teacher_cells:Array(String)}}[r],
                               arraySort(arrayDistinct(teacher_ranks))), ';') AS teacher_cell,
    throwIf(has(teacher_ranks, 0), '{TEACHERS_CHANGED}')
    + throwIf(environment NOT IN ('prek2', 'g3plus'), 'unknown learning environment')
    + throwIf(tested AND grade_norm = '', 'not a grade level (PK, K, KG, 1-12)')
    + throwIf({_PERCENTILE_REFUSED}, 'percentile must be in 0..100')
    + throwIf({_AVERAGE_REFUSED}, 'a quiz average is not a percent') AS refused
SELECT if(refused = 0, concat(concatWithSeparator(',',
    {head},
    if(is_active != 0, 'True', 'False'), if(is_ell != 0, 'True', 'False'),
    if(is_iep != 0, 'True', 'False'), if(environment = 'prek2', 'PreK-2', 'Grade 3+'),
    {_text("building")}, {_text("teacher_cell")},
    {_test(1)}, {_test(2)}, {_test(3)},
    {_text("latest_level")},
    {", ".join(_TAIL)}
), '\\r\\n'), '') AS line
FROM ({inner})
ORDER BY last_name, first_name, student_id
SETTINGS short_circuit_function_evaluation = 'disable'
"""  # noqa: S608 - the inner query is ours; every value is a bound parameter
