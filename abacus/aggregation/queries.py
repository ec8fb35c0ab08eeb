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
PASSES_SQL = """
SELECT student_id, lesson_id, pass_date, pass_at, pass_kind, grade, product
FROM (
    SELECT student_id, lesson_id, attempt,
           argMin(local_date, (occurred_at, kind)) AS pass_date,
           min(occurred_at) AS pass_at,
           argMin(kind, (occurred_at, kind)) AS pass_kind,
           argMin(lesson_grade_level, (occurred_at, kind)) AS grade,
           argMin(product, (occurred_at, kind)) AS product
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
