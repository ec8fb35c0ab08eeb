-- Per-(district, student, calendar month) rollups, what an export reads for every month its
-- range covers whole (daily_rollups for the days at its edges): the month's sums, latest
-- event and products from daily_rollups, and every pass dated in the month from
-- lesson_rollups (date, time in ms, by pre-quiz, the lesson grade's rank in PK..12, 0 when
-- unknown). Rebuilt, never added to, after the rollups it reads (abacus/aggregation/
-- rollups.py). version = the month's daily fact_rows + the student's lesson fact_rows: both
-- only grow, so a row built later replaces an earlier one.
CREATE TABLE IF NOT EXISTS {db}.monthly_rollups
(
    district_id     LowCardinality(String),
    student_id      String,
    month           Date,
    school_ms       UInt64,
    evening_ms      UInt64,
    lessons_started UInt64,
    pre_quiz_sum    Float64,
    pre_quiz_count  UInt64,
    post_quiz_sum   Float64,
    post_quiz_count UInt64,
    problems        UInt64,
    points          UInt64,
    tokens          UInt64,
    math_helps      UInt64,
    live_helps      UInt64,
    last_key        UInt64,
    products        UInt8,
    passes          Array(Tuple(local_date Date, at_ms Int64, by_pre UInt8, grade_rank UInt8)),
    version         UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY cityHash64(student_id) % 8
ORDER BY (district_id, student_id, month);
