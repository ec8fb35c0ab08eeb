-- Benchmark results, one row per benchmark_completed event (idempotent by event_id).
-- Small beside `events`, so exports read the latest result per test without scanning events.
CREATE TABLE IF NOT EXISTS {db}.benchmark_facts
(
    district_id         LowCardinality(String),
    student_id          String,
    event_id            UUID,
    occurred_at         DateTime64(3, 'UTC'),
    local_date          Date,
    benchmark_number    UInt8,
    quantile_measure    Int32,
    instructional_level LowCardinality(String),
    percentile_rank     Nullable(UInt8)
)
ENGINE = ReplacingMergeTree
ORDER BY (district_id, student_id, event_id);
