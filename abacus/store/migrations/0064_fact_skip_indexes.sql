-- Skip indexes that keep a rollup rebuild (abacus/aggregation/rollups.py) off the granules
-- that cannot hold its keys. The fact tables are sorted by student first, so without them a
-- rebuild reads one granule per touched student in every part, today's keys included.
-- daily_facts: a day's keys only read parts (and granules) whose days include that day;
-- lesson_facts: a (student, lesson) pair only reads granules that hold the pair.
-- MATERIALIZE builds them for the parts stored before this migration.
ALTER TABLE {db}.daily_facts
    ADD INDEX IF NOT EXISTS local_date_minmax local_date TYPE minmax GRANULARITY 1;
ALTER TABLE {db}.daily_facts MATERIALIZE INDEX local_date_minmax SETTINGS mutations_sync = 2;
ALTER TABLE {db}.lesson_facts
    ADD INDEX IF NOT EXISTS pair_bloom concat(student_id, '\x1f', lesson_id)
    TYPE bloom_filter(0.01) GRANULARITY 1;
ALTER TABLE {db}.lesson_facts MATERIALIZE INDEX pair_bloom SETTINGS mutations_sync = 2;
