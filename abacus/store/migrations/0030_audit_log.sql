-- The one audit trail (abacus/audit.py): sign-ins, failed sign-ins, resets, export requests,
-- downloads and refusals. Replaces export_audit, whose rows move here; export_audit stays
-- as a view of the download rows in its old shape for anything that still reads it.
-- Deletions and re-enables are audited here too; a row whose target is a student id has it
-- replaced by a keyed pseudonym when the student is deleted (abacus/privacy/plan.py).
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

INSERT INTO {db}.audit_log (at, district_id, actor, action, target, detail, remote)
SELECT at, district_id, requester, if(action = 'denied', 'download.denied', action),
       request_id, detail, remote
FROM {db}.export_audit;

DROP TABLE IF EXISTS {db}.export_audit;

-- (The filter sits in a subquery: an alias named like a column shadows it in WHERE.)
CREATE VIEW IF NOT EXISTS {db}.export_audit AS
SELECT at, district_id, target AS request_id, actor AS requester,
       if(action = 'download.denied', 'denied', action) AS action, detail, remote
FROM (SELECT * FROM {db}.audit_log WHERE action IN ('download', 'download.denied'));
