-- Every export request id used, per district: who first used it and a digest of what they
-- asked for. An id is used once (abacus/export/claims.py): the same record delivered again
-- is run again, any other request under it is refused. Rows are never updated.
CREATE TABLE IF NOT EXISTS {db}.export_requests
(
    district_id    LowCardinality(String),
    request_id     String,
    requester      String,
    payload_sha256 String,
    requested_at   DateTime64(3, 'UTC')
)
ENGINE = MergeTree
ORDER BY (district_id, request_id, requested_at);
