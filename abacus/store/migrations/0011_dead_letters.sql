-- Every dead letter, kept in the durable store before it is sent to the dead-letter topic
-- (the embedded broker forgets its topics when it stops; the worker republishes these to
-- an empty dead-letter topic of a new broker epoch). Holds the original bytes: a record
-- key is usually a student id, so privacy deletion must reach this table too.
CREATE TABLE IF NOT EXISTS {db}.dead_letters
(
    epoch         LowCardinality(String),
    src_topic     LowCardinality(String),
    src_partition UInt32,
    src_offset    UInt64,
    key           String,
    value         String CODEC(ZSTD(1)),
    reason        String,
    failed_at     DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY (epoch, src_topic, src_partition, src_offset);
