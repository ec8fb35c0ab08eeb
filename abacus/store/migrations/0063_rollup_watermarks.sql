-- How far the rollups are complete: per broker epoch and events partition, the next offset
-- such that every event stored from an earlier offset has its rollups written. Ingest
-- writes it after a batch's rollups and before committing the batch's offsets; an export
-- compares it with the events stored before it reads (abacus/export/coverage.py). The
-- highest offset wins.
CREATE TABLE IF NOT EXISTS {db}.rollup_watermarks
(
    epoch       LowCardinality(String),
    partition   UInt32,
    next_offset UInt64,
    updated_at  DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(next_offset)
ORDER BY (epoch, partition);
