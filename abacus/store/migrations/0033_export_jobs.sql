-- Every export request and its latest status, for the portal's "My exports" and the
-- district admin's list: written when the portal queues a request and at each status the
-- export consumer publishes (accepted, completed, failed). Latest = highest version.
CREATE TABLE IF NOT EXISTS {db}.export_jobs
(
    district_id  LowCardinality(String),
    request_id   String,
    requester    String,
    product      LowCardinality(String),
    range_kind   LowCardinality(String),
    start        Nullable(Date),
    end          Nullable(Date),
    status       LowCardinality(String),
    reason       String,
    rows         UInt64,
    bytes        UInt64,
    requested_at DateTime64(3, 'UTC'),
    updated_at   DateTime64(3, 'UTC'),
    version      UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (district_id, request_id);
