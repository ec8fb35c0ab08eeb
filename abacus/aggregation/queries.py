"""The SQL that reads aggregates back: daily sums and resolved lesson passes.

All reads deduplicate with FINAL, so a row written twice counts once even before
ClickHouse merges parts. Parameters use clickhouse-connect's server-side binding.
"""

from __future__ import annotations

__all__ = ["DAILY_TOTALS_SQL", "PASSES_SQL"]

# Per student and local day, every metric summed; {db} is the database name.
DAILY_TOTALS_SQL = """
SELECT student_id, local_date,
       sum(school_ms), sum(evening_ms), sum(lessons_started),
       sum(pre_quiz_sum), sum(pre_quiz_count), sum(post_quiz_sum), sum(post_quiz_count),
       sum(problems), sum(points), sum(tokens), sum(math_helps), sum(live_helps)
FROM {db}.daily_facts FINAL
WHERE district_id = {{district:String}}
  AND local_date BETWEEN {{start:Date}} AND {{end:Date}}
GROUP BY student_id, local_date
"""

# One row per passed attempt whose (first) passing outcome falls in [start, end].
# An attempt is the run of a lesson's outcomes after each lesson_started (start sorts
# before outcomes at the same millisecond); it passes at most once, on its first pass.
# One argMin of a tuple picks every field of that first pass in one pass over the group.
PASSES_SQL = """
SELECT student_id, lesson_id, first.1 AS pass_date, first.2 AS pass_at,
       first.3 AS pass_kind, first.4 AS grade, first.5 AS product
FROM (
    SELECT student_id, lesson_id, attempt,
           argMin(tuple(local_date, occurred_at, kind, lesson_grade_level, product),
                  (occurred_at, kind)) AS first
    FROM (
        SELECT student_id, lesson_id, occurred_at, local_date, kind, passed,
               lesson_grade_level, product,
               sum(kind = 'start') OVER (
                   PARTITION BY student_id, lesson_id
                   ORDER BY occurred_at, kind
                   ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
               ) AS attempt
        FROM {db}.lesson_facts FINAL
        WHERE district_id = {{district:String}} AND local_date <= {{end:Date}}
    )
    WHERE passed = 1
    GROUP BY student_id, lesson_id, attempt
)
WHERE pass_date BETWEEN {{start:Date}} AND {{end:Date}}
"""
