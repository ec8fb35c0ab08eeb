-- Per-event fact rows, keyed by event_id (+ piece for sessions split across local days).
-- ReplacingMergeTree on that key makes every write idempotent; readers use FINAL.
CREATE TABLE IF NOT EXISTS {db}.daily_facts
(
    district_id     LowCardinality(String),
    student_id      String,
    local_date      Date,
    event_id        UUID,
    piece           UInt8,
    product         LowCardinality(String),
    occurred_at     DateTime64(3, 'UTC'),
    school_ms       UInt64,
    evening_ms      UInt64,
    lessons_started UInt32,
    pre_quiz_sum    Float64,
    pre_quiz_count  UInt32,
    post_quiz_sum   Float64,
    post_quiz_count UInt32,
    problems        UInt32,
    points          UInt64,
    tokens          UInt64,
    math_helps      UInt32,
    live_helps      UInt32
)
ENGINE = ReplacingMergeTree
ORDER BY (district_id, student_id, local_date, event_id, piece);

-- Lesson starts and outcomes; attempts and passes are resolved at read time (order-free):
-- an attempt is the run of outcomes after a lesson_started of the same lesson.
CREATE TABLE IF NOT EXISTS {db}.lesson_facts
(
    district_id        LowCardinality(String),
    student_id         String,
    lesson_id          String,
    occurred_at        DateTime64(3, 'UTC'),
    event_id           UUID,
    local_date         Date,
    kind               Enum8('start' = 1, 'pre' = 2, 'post' = 3, 'complete' = 4),
    passed             UInt8,
    lesson_grade_level LowCardinality(String),
    product            LowCardinality(String)
)
ENGINE = ReplacingMergeTree
ORDER BY (district_id, student_id, lesson_id, occurred_at, event_id);

-- Events stored before their district was configured; facts follow once it is.
-- resolved = 1 rows replace resolved = 0 rows (the version column).
CREATE TABLE IF NOT EXISTS {db}.pending_facts
(
    district_id LowCardinality(String),
    event_id    UUID,
    resolved    UInt8
)
ENGINE = ReplacingMergeTree(resolved)
ORDER BY (district_id, event_id);
