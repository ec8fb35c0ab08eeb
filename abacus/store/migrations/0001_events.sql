-- Every accepted app event, once per event_id after merges (ReplacingMergeTree), with the
-- Kafka partition/offset it came from. Readers deduplicate with FINAL or LIMIT 1 BY.
CREATE TABLE IF NOT EXISTS {db}.events
(
    district_id   LowCardinality(String),
    student_id    String,
    event_id      UUID,
    event_type    LowCardinality(String),
    product       LowCardinality(String),
    occurred_at   DateTime64(3, 'UTC'),
    payload       String CODEC(ZSTD(1)),
    src_partition UInt16,
    src_offset    UInt64,
    ingested_at   DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (district_id, student_id, event_id);
