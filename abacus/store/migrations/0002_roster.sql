-- Roster dimension tables, kept current by the roster agent from the compacted roster-* and
-- district-config topics. Latest state per key = highest version (the import's epoch ms);
-- readers use FINAL. A record never disappears: a removed one arrives with is_active = 0.
--
-- Data minimisation: date of birth, gender, race, ethnicity and passwords are validated on
-- upload but never published nor stored; the Student Data Export needs none of them.
CREATE TABLE IF NOT EXISTS {db}.roster_students
(
    district_id     LowCardinality(String),
    student_id      String,
    first_name      String,
    last_name       String,
    grade           LowCardinality(String),
    building        String,
    is_ell          UInt8,
    is_iep          UInt8,
    district_data_1 String,
    district_data_2 String,
    district_data_3 String,
    district_data_4 String,
    district_data_5 String,
    is_active       UInt8,
    import_id       String,
    version         UInt64,
    updated_at      DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (district_id, student_id);

-- Every published version of every student (append-only: one row per district, student
-- and import that changed it), so the grade at any time is known. ReplacingMergeTree on
-- the full key only folds a record delivered twice after a worker restart.
-- Same columns as roster_students (CREATE … AS copies them).
CREATE TABLE IF NOT EXISTS {db}.roster_students_history AS {db}.roster_students
ENGINE = ReplacingMergeTree
ORDER BY (district_id, student_id, version);

-- Staff. email is kept to mail export links to the requester; passwords never are.
CREATE TABLE IF NOT EXISTS {db}.roster_users
(
    district_id LowCardinality(String),
    employee_id String,
    username    String,
    email       String,
    first_name  String,
    last_name   String,
    user_type   UInt8,
    buildings   Array(String),
    is_active   UInt8,
    import_id   String,
    version     UInt64,
    updated_at  DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (district_id, employee_id);

CREATE TABLE IF NOT EXISTS {db}.roster_links
(
    district_id LowCardinality(String),
    employee_id String,
    student_id  String,
    is_active   UInt8,
    import_id   String,
    version     UInt64,
    updated_at  DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (district_id, employee_id, student_id);

-- The validated district.toml of each district, as JSON (abacus.district.DistrictConfig).
CREATE TABLE IF NOT EXISTS {db}.districts
(
    district_id LowCardinality(String),
    name        String,
    timezone    String,
    config_json String,
    version     UInt64,
    updated_at  DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(version)
ORDER BY district_id;
