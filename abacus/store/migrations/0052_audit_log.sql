-- The one audit trail (abacus/audit.py): exports requested, files downloaded, deletions and
-- re-enables (and the portal's sign-ins). Same shape as the portal's audit_log, so either
-- migration may create it first. A student is never named here in the clear: a row whose
-- target is a student id has it replaced by a keyed pseudonym when the student is deleted.
CREATE TABLE IF NOT EXISTS {db}.audit_log
(
    at          DateTime64(3, 'UTC'),
    district_id LowCardinality(String),
    actor       String,
    action      LowCardinality(String),
    target      String,
    detail      String,
    remote      String
)
ENGINE = MergeTree
ORDER BY (district_id, at);
