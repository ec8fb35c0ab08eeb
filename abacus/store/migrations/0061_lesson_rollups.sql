-- Resolved lesson attempts per (district, student, lesson): how many attempts, and the first
-- passing outcome of each attempt that passed (local date, time, kind, lesson grade), in
-- time order. Rebuilt whole from lesson_facts FINAL for every (student, lesson) a batch
-- touches (abacus/aggregation/rollups.py): a late lesson_started that splits an attempt
-- rewrites the row. fact_rows is the version, as in daily_rollups.
CREATE TABLE IF NOT EXISTS {db}.lesson_rollups
(
    district_id LowCardinality(String),
    student_id  String,
    lesson_id   String,
    attempts    UInt32,
    passes      Array(Tuple(local_date Date, at DateTime64(3, 'UTC'), kind Enum8('start' = 1, 'pre' = 2, 'post' = 3, 'complete' = 4), grade String)),
    fact_rows   UInt64
)
ENGINE = ReplacingMergeTree(fact_rows)
PARTITION BY cityHash64(student_id) % 8
ORDER BY (district_id, student_id, lesson_id)
SETTINGS index_granularity = 1024;
