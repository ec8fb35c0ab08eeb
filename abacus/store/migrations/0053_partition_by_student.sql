-- The three big per-student tables (events, daily_facts, lesson_facts) partitioned by a hash
-- of the student id into 8 partitions, so a student's deletion (ALTER TABLE … DELETE, a
-- mutation) rewrites only the partition that holds them: ClickHouse leaves a part whose
-- rows the predicate cannot match as it is. Unpartitioned, every table is one merged part
-- and deleting one student rewrote all of it. A student's rows, and so every duplicate of
-- a key, stay in one partition: ReplacingMergeTree still deduplicates them.
-- ClickHouse cannot change a table's partition key in place: each table is copied into a
-- partitioned one and the two exchanged. Run again after a crash, it starts over from the
-- table in place (the copy is dropped first), so it never exchanges back.
DROP TABLE IF EXISTS {db}.events_by_student;
CREATE TABLE IF NOT EXISTS {db}.events_by_student AS {db}.events
ENGINE = ReplacingMergeTree
PARTITION BY cityHash64(student_id) % 8
ORDER BY (district_id, student_id, event_id);
INSERT INTO {db}.events_by_student SELECT * FROM {db}.events;
EXCHANGE TABLES {db}.events AND {db}.events_by_student;
DROP TABLE IF EXISTS {db}.events_by_student;

DROP TABLE IF EXISTS {db}.daily_facts_by_student;
CREATE TABLE IF NOT EXISTS {db}.daily_facts_by_student AS {db}.daily_facts
ENGINE = ReplacingMergeTree
PARTITION BY cityHash64(student_id) % 8
ORDER BY (district_id, student_id, local_date, event_id, piece);
INSERT INTO {db}.daily_facts_by_student SELECT * FROM {db}.daily_facts;
EXCHANGE TABLES {db}.daily_facts AND {db}.daily_facts_by_student;
DROP TABLE IF EXISTS {db}.daily_facts_by_student;

DROP TABLE IF EXISTS {db}.lesson_facts_by_student;
CREATE TABLE IF NOT EXISTS {db}.lesson_facts_by_student AS {db}.lesson_facts
ENGINE = ReplacingMergeTree
PARTITION BY cityHash64(student_id) % 8
ORDER BY (district_id, student_id, lesson_id, occurred_at, event_id);
INSERT INTO {db}.lesson_facts_by_student SELECT * FROM {db}.lesson_facts;
EXCHANGE TABLES {db}.lesson_facts AND {db}.lesson_facts_by_student;
DROP TABLE IF EXISTS {db}.lesson_facts_by_student;
