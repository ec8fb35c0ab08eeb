-- The OneRoster importer's state (abacus/roster/oneroster/state.py): the buckets it publishes
-- on roster-oneroster, stored by the roster consumer as published (`doc`: the record's JSON
-- value), so that a broker which forgets its topics (the embedded one, on restart) gets
-- them back from here (streams/restore.py) and a delta package still finds the classes,
-- users and enrollments of earlier uploads. Latest version per key; readers use FINAL.
CREATE TABLE IF NOT EXISTS {db}.roster_oneroster_state
(
    district_id LowCardinality(String),
    key         String,
    doc         String,
    version     UInt64,
    updated_at  DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (district_id, key);
