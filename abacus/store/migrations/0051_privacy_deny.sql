-- The deny-list: students (student_id '' = the whole district) whose data was deleted.
-- Ingest drops their events and the roster agent their roster records, so late or replayed
-- data never brings them back; an explicit re-enable (abacus privacy reenable) sets
-- reenabled_at, after which data dated from then on is accepted again (a fresh start).
-- Latest state per student = the highest version.
CREATE TABLE IF NOT EXISTS {db}.privacy_deny
(
    district_id  LowCardinality(String),
    student_id   String,
    request_id   String,
    deleted_at   DateTime64(3, 'UTC'),
    reenabled_at Nullable(DateTime64(3, 'UTC')),
    version      UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (district_id, student_id);
