-- Every deletion request (abacus privacy delete|reenable) and, once done, its signed receipt
-- (JSON). Kept after the deletion on purpose: it is the proof the data was deleted, and the
-- deletion's ALTER … DELETE mutations name their students through it (a subquery on
-- request_id), so no student id is ever written into a mutation's text or the query log.
-- A district deletion keeps its district's rows here too. Latest status per request = the
-- highest version.
CREATE TABLE IF NOT EXISTS {db}.privacy_requests
(
    district_id  LowCardinality(String),
    request_id   String,
    kind         LowCardinality(String),
    requester    String,
    reason       String,
    student_ids  Array(String),
    -- the keyed pseudonym of each student, in the same order (what audit rows keep)
    student_pseudonyms Array(String),
    status       LowCardinality(String),
    requested_at DateTime64(3, 'UTC'),
    completed_at Nullable(DateTime64(3, 'UTC')),
    receipt      String CODEC(ZSTD(1)),
    version      UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (district_id, request_id);
