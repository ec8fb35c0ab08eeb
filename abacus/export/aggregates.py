"""The export query's aggregates per student in scope, from the rollups or from the facts.

Three CTEs with the same columns either way, which the export query joins to the roster:
`totals` (every sum over the range and the latest product used in it), `products` (ever
used up to the end date) and `pass_counts` (passes in the range, by pre-quiz, and on the
student's grade level at the time of the pass). Both sources give the same rows, value for
value (tested byte for byte on the CSV); the facts are the fallback while the rollups lag
and the oracle the rollups are tested against.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal

from abacus.aggregation.queries import PASSES_SQL
from abacus.aggregation.rollups import PRODUCT_RANKS
from abacus.catalog import (
    DAILY_FACTS,
    DAILY_ROLLUPS,
    MONTHLY_ROLLUPS,
    ROSTER_STUDENTS_HISTORY,
    SUMMED_COLUMNS,
)
from abacus.domain.grades import GRADES_SQL

__all__ = ["IN_SCOPE", "SOURCES", "Source", "aggregate_ctes", "whole_months"]

# Where the sums and passes come from: the exact rollups, or the facts themselves.
Source = Literal["rollups", "facts"]
SOURCES: tuple[Source, ...] = ("rollups", "facts")

# The export's names for the summed columns (averages are sums and counts).
_NAMES = dict(
    zip(
        SUMMED_COLUMNS,
        (
            "school_ms", "evening_ms", "lessons_started", "pre_sum", "pre_count", "post_sum",
            "post_count", "problems", "points", "tokens", "math_helps", "live_helps",
        ),
        strict=True,
    )
)  # fmt: skip
_TOTALS = ", ".join(f"sum({c}) AS {n}" for c, n in _NAMES.items())
# Filled by `aggregate_ctes`: the scope's students (`IN_SCOPE`), or every student of the
# district for a district-wide export (the join to the roster drops the others anyway).
_IN_SCOPE = "{in_scope}"
IN_SCOPE = "student_id IN (SELECT student_id FROM scoped)"
_DISTRICT = "district_id = {{district:String}}"


def whole_months(start: date, end: date) -> tuple[date, date]:
    """The whole calendar months inside [start, end], as (first day of the first, last day
    of the last); when there is none, an empty span (first > last) just after ``end``."""
    first = start if start.day == 1 else (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    after_end = end + timedelta(days=1)
    last = end if after_end.day == 1 else end.replace(day=1) - timedelta(days=1)
    if first > last:
        return after_end, end
    return first, last


def aggregate_ctes(db: str, source: Source, *, whole_district: bool = False) -> str:
    """`totals`, `products` and `pass_counts` (each ending with a comma), reading ``source``,
    for the students in ``scoped`` (all of the district's, unfiltered, with
    ``whole_district``). Parameters: district, start, end, months_from, months_to
    (`whole_months`)."""
    in_scope = "1" if whole_district else IN_SCOPE
    return (_FACTS if source == "facts" else _ROLLUPS).format(db=db, in_scope=in_scope)


# The facts: every fact row of the range, attempts resolved here (aggregation/queries.py).
_FACTS = f"""
totals AS (
    SELECT student_id, {_TOTALS},
           argMax(product, (occurred_at, product)) AS latest_product
    FROM {{db}}.{DAILY_FACTS.name} FINAL
    WHERE {_DISTRICT} AND local_date BETWEEN {{{{start:Date}}}} AND {{{{end:Date}}}}
      AND {_IN_SCOPE}
    GROUP BY student_id
),
products AS (
    -- max() is unaffected by duplicate rows, so no FINAL is needed here.
    SELECT student_id, max(product = 'g3plus') AS ever_g3, max(product = 'prek2') AS ever_prek2
    FROM {{db}}.{DAILY_FACTS.name}
    WHERE {_DISTRICT} AND local_date <= {{{{end:Date}}}} AND {_IN_SCOPE}
    GROUP BY student_id
),
passes AS (
    SELECT student_id, pass_kind, grade AS lesson_grade,
           toUnixTimestamp64Milli(pass_at) AS pass_ms
    FROM ({PASSES_SQL})
    WHERE {_IN_SCOPE}
),
grade_history AS (
    SELECT student_id, toInt64(version) AS version, grade
    FROM {{db}}.{ROSTER_STUDENTS_HISTORY.name}
    WHERE {_DISTRICT} AND {_IN_SCOPE}
),
pass_counts AS (
    -- The student's grade at the time of the pass (roster history), else the current one.
    SELECT p.student_id AS student_id, count() AS passed,
           countIf(p.pass_kind = 'pre') AS passed_by_pre,
           countIf(indexOf({GRADES_SQL}, p.lesson_grade) >=
                   indexOf({GRADES_SQL}, if(h.grade = '', s.grade, h.grade))) AS passed_on_grade
    FROM passes AS p
    ASOF LEFT JOIN grade_history AS h
        ON p.student_id = h.student_id AND p.pass_ms >= h.version
    LEFT JOIN scoped AS s ON p.student_id = s.student_id
    GROUP BY p.student_id
),"""  # noqa: S608 - table names are ours; values are bound

_PRODUCT_NAMES = ["", *sorted(PRODUCT_RANKS, key=PRODUCT_RANKS.__getitem__)]
_SUMMED = ", ".join(SUMMED_COLUMNS)
_IN_RANGE = "x.1 BETWEEN {{start:Date}} AND {{end:Date}}"
_EDGE_DAYS = (
    "local_date BETWEEN {{start:Date}} AND {{end:Date}}"
    " AND NOT (local_date BETWEEN {{months_from:Date}} AND {{months_to:Date}})"
)

# The rollups: whole months from monthly_rollups, the days at the range's edges from
# daily_rollups. Passes come as arrays per month; the grade at the time of each pass is
# found in the student's roster history as an array, which is what the ASOF join does.
_ROLLUPS = f"""
totals AS (
    SELECT student_id, {_TOTALS},
           {_PRODUCT_NAMES}[toUInt32(max(last_key) % 4) + 1] AS latest_product
    FROM (
        SELECT student_id, {_SUMMED}, last_key FROM {{db}}.{MONTHLY_ROLLUPS.name} FINAL
        WHERE {_DISTRICT} AND month BETWEEN {{{{months_from:Date}}}} AND {{{{months_to:Date}}}}
        UNION ALL
        SELECT student_id, {_SUMMED}, last_key FROM {{db}}.{DAILY_ROLLUPS.name} FINAL
        WHERE {_DISTRICT} AND {_EDGE_DAYS}
    )
    WHERE {_IN_SCOPE}
    GROUP BY student_id
),
products AS (
    -- A later version of a rollup row holds every product an earlier one did: no FINAL.
    SELECT student_id, max(bitTest(products, 0)) AS ever_g3,
           max(bitTest(products, 1)) AS ever_prek2
    FROM (
        SELECT student_id, products FROM {{db}}.{MONTHLY_ROLLUPS.name}
        WHERE {_DISTRICT} AND month < toStartOfMonth({{{{end:Date}}}})
        UNION ALL
        SELECT student_id, products FROM {{db}}.{DAILY_ROLLUPS.name}
        WHERE {_DISTRICT}
          AND local_date BETWEEN toStartOfMonth({{{{end:Date}}}}) AND {{{{end:Date}}}}
    )
    WHERE {_IN_SCOPE}
    GROUP BY student_id
),
grade_ranks AS (
    -- Per student: the roster history's version times, and the grade rank in effect before
    -- the first of them (the current grade) and from each of them on.
    SELECT s.student_id AS student_id, arrayMap(v -> v.1, h.versions) AS times,
           arrayConcat([indexOf({GRADES_SQL}, s.grade)],
                        arrayMap(v -> indexOf({GRADES_SQL}, if(v.2 = '', s.grade, v.2)),
                                 h.versions)) AS ranks
    FROM scoped AS s
    LEFT JOIN (
        SELECT student_id, arraySort(groupArray((toInt64(version), grade))) AS versions
        FROM {{db}}.{ROSTER_STUDENTS_HISTORY.name}
        WHERE {_DISTRICT} AND {_IN_SCOPE}
        GROUP BY student_id
    ) AS h ON s.student_id = h.student_id
),
pass_counts AS (
    -- Each pass against the student's grade at its time (roster history), else the current
    -- grade: what the facts' ASOF join does, on the arrays of one student.
    SELECT m.student_id AS student_id,
           sum(arrayCount(x -> {_IN_RANGE}, m.passes)) AS passed,
           sum(arrayCount(x -> {_IN_RANGE} AND x.3 = 1, m.passes)) AS passed_by_pre,
           sum(arrayCount(x -> {_IN_RANGE}
                               AND x.4 >= g.ranks[1 + arrayCount(t -> t <= x.2, g.times)],
                          m.passes)) AS passed_on_grade
    FROM (
        SELECT student_id, passes FROM {{db}}.{MONTHLY_ROLLUPS.name} FINAL
        WHERE {_DISTRICT} AND {_IN_SCOPE}
          AND month BETWEEN toStartOfMonth({{{{start:Date}}}}) AND {{{{end:Date}}}}
    ) AS m
    LEFT JOIN grade_ranks AS g ON m.student_id = g.student_id
    GROUP BY m.student_id
),"""  # noqa: S608 - table names are ours; values are bound
