-- How far the rollups are complete (abacus/aggregation/closing.py has the rules):
-- per district, mark 'closed' = the last local day (as a day number) whose rollups were
-- built whole when it closed; district '' mark 'dirty' = the last sequence number of
-- rollup_dirty whose keys were rebuilt. Marks only grow: the highest value wins.
CREATE TABLE IF NOT EXISTS {db}.rollup_watermarks
(
    district_id LowCardinality(String),
    mark        LowCardinality(String),
    value       UInt64,
    updated_at  DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(value)
ORDER BY (district_id, mark);

-- The rollup keys of late facts: a fact for a day that had already ended (district local
-- time) when ingest stored it. Written by ingest BEFORE the facts (a crash in between
-- leaves a key to rebuild, never a fact without its key); rebuilt by the rollup service in
-- the background, many batches per statement. lesson_id '' is a day key; otherwise a
-- (student, lesson) key whose earliest late fact is on local_date. seq orders the rows
-- (streams/rollups.py): rows up to the 'dirty' mark are done.
CREATE TABLE IF NOT EXISTS {db}.rollup_dirty
(
    seq         UInt64,
    district_id LowCardinality(String),
    student_id  String,
    local_date  Date,
    lesson_id   String
)
ENGINE = MergeTree
ORDER BY seq;
