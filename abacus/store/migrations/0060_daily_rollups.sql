-- Exact per-(district, student, local day) rollups of daily_facts: every summed column, the
-- day's latest event (for the export's learning environment) and which products were used.
-- A row is only ever written by rebuilding its key from daily_facts FINAL
-- (abacus/aggregation/rollups.py), never by adding to it, so a replayed duplicate cannot
-- count twice. fact_rows (how many fact rows the row sums) is the version: facts only grow,
-- so a row built later has at least as many and replaces the earlier one; equal counts mean
-- the same facts and the same sums.
--
-- Partitioned by month: an export reads the days at its range's edges from two partitions,
-- and a rebuild of this month's keys reads this month's partition only.
-- last_key: the day's latest (occurred_at, product) as one number,
-- milliseconds * 4 + product rank (1 g3plus, 2 prek2), so the latest over many days is a max().
CREATE TABLE IF NOT EXISTS {db}.daily_rollups
(
    district_id     LowCardinality(String),
    student_id      String,
    local_date      Date,
    school_ms       UInt64,
    evening_ms      UInt64,
    lessons_started UInt64,
    pre_quiz_sum    Float64,
    pre_quiz_count  UInt64,
    post_quiz_sum   Float64,
    post_quiz_count UInt64,
    problems        UInt64,
    points          UInt64,
    tokens          UInt64,
    math_helps      UInt64,
    live_helps      UInt64,
    last_key        UInt64,
    products        UInt8,
    fact_rows       UInt64
)
ENGINE = ReplacingMergeTree(fact_rows)
PARTITION BY toYYYYMM(local_date)
ORDER BY (district_id, student_id, local_date)
SETTINGS index_granularity = 1024;
