-- Who downloaded (or was refused) which export, when and from where.
CREATE TABLE IF NOT EXISTS {db}.export_audit
(
    at          DateTime64(3, 'UTC'),
    district_id LowCardinality(String),
    request_id  String,
    requester   String,
    action      LowCardinality(String),
    detail      String,
    remote      String
)
ENGINE = MergeTree
ORDER BY (district_id, request_id, at);
