-- Passwords set in the portal ("Forgot password"), apart from the roster's so that no roster
-- import nor topic restore overwrites them; the newer of the two signs in
-- (abacus/accounts/credentials.py). Written only by the worker.
CREATE TABLE IF NOT EXISTS {db}.portal_credentials
(
    district_id   LowCardinality(String),
    employee_id   String,
    password_hash String,
    set_at        UInt64,
    updated_at    DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(set_at)
ORDER BY (district_id, employee_id);
