-- The three big per-student tables go from 8 partitions (0053) to 2, by the same hash of
-- the student id. An insert writes one part per partition it touches, and a batch of a few
-- hundred students touches them all: 24 parts (13 files each) per batch across the three
-- tables cost the worker's store more than any other step, where 6 do not (README,
-- Performance: the same batches stored in 8, 4, 2 and 1 partitions). A student's deletion
-- rewrites the partition holding them, now half of each table instead of an eighth
-- (`abacus bench privacy`, 100k students x 180 days: one student 4.4 s in 8 partitions,
-- 12.5 s in 2; its target is 60 s). Raise the count again, with a migration like this one,
-- where deletions matter more than ingest (a server holding many districts).
-- As 0053: each table is copied into a partitioned one and the two exchanged; run again
-- after a crash, it starts over from the table in place (the copy is dropped first). The
-- copies keep 0064's skip indexes (ADD INDEX IF NOT EXISTS covers a CREATE … AS that
-- did not carry them).
DROP TABLE IF EXISTS {db}.events_repartitioned;
CREATE TABLE IF NOT EXISTS {db}.events_repartitioned AS {db}.events
ENGINE = ReplacingMergeTree
PARTITION BY cityHash64(student_id) % 2
ORDER BY (district_id, student_id, event_id);
INSERT INTO {db}.events_repartitioned SELECT * FROM {db}.events;
EXCHANGE TABLES {db}.events AND {db}.events_repartitioned;
DROP TABLE IF EXISTS {db}.events_repartitioned;

DROP TABLE IF EXISTS {db}.daily_facts_repartitioned;
CREATE TABLE IF NOT EXISTS {db}.daily_facts_repartitioned AS {db}.daily_facts
ENGINE = ReplacingMergeTree
PARTITION BY cityHash64(student_id) % 2
ORDER BY (district_id, student_id, local_date, event_id, piece);
ALTER TABLE {db}.daily_facts_repartitioned
    ADD INDEX IF NOT EXISTS local_date_minmax local_date TYPE minmax GRANULARITY 1;
INSERT INTO {db}.daily_facts_repartitioned SELECT * FROM {db}.daily_facts;
EXCHANGE TABLES {db}.daily_facts AND {db}.daily_facts_repartitioned;
DROP TABLE IF EXISTS {db}.daily_facts_repartitioned;

DROP TABLE IF EXISTS {db}.lesson_facts_repartitioned;
CREATE TABLE IF NOT EXISTS {db}.lesson_facts_repartitioned AS {db}.lesson_facts
ENGINE = ReplacingMergeTree
PARTITION BY cityHash64(student_id) % 2
ORDER BY (district_id, student_id, lesson_id, occurred_at, event_id);
ALTER TABLE {db}.lesson_facts_repartitioned
    ADD INDEX IF NOT EXISTS pair_bloom concat(student_id, '\x1f', lesson_id)
    TYPE bloom_filter(0.01) GRANULARITY 1;
INSERT INTO {db}.lesson_facts_repartitioned SELECT * FROM {db}.lesson_facts;
EXCHANGE TABLES {db}.lesson_facts AND {db}.lesson_facts_repartitioned;
DROP TABLE IF EXISTS {db}.lesson_facts_repartitioned;
