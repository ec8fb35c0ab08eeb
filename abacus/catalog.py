"""Every ClickHouse table Abacus has: its name, the columns the code writes, and whose data it
holds (a privacy deletion walks this list: `abacus/privacy/plan.py`).

One entry per table created by a migration (`abacus/store/migrations/NNNN_*.sql`); a unit
test checks both directions. To add a table: write the migration, add a `Table` here and to
`TABLES`, say whether it holds per-student data and in which columns. A column added later
(`ALTER TABLE … ADD COLUMN`) goes into the table's `columns` too.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AUDIT_LOG",
    "BENCHMARK_FACTS",
    "DAILY_FACTS",
    "DAILY_ROLLUPS",
    "DEAD_LETTERS",
    "DISTRICTS",
    "EVENTS",
    "EXPORT_JOBS",
    "EXPORT_REQUESTS",
    "LESSON_FACTS",
    "LESSON_ROLLUPS",
    "MONTHLY_ROLLUPS",
    "PENDING_FACTS",
    "PORTAL_CREDENTIALS",
    "PRIVACY_DENY",
    "PRIVACY_REQUESTS",
    "ROLLUP_DIRTY",
    "ROLLUP_WATERMARKS",
    "ROSTER_LINKS",
    "ROSTER_ONEROSTER_STATE",
    "ROSTER_STUDENTS",
    "ROSTER_STUDENTS_HISTORY",
    "ROSTER_USERS",
    "SCHEMA_MIGRATIONS",
    "SUMMED_COLUMNS",
    "TABLES",
    "Table",
    "staff_tables",
    "student_tables",
    "table",
]


@dataclass(frozen=True)
class Table:
    """One table. ``columns``: what the code inserts, in that order (empty when only SQL
    writes it). ``student_column`` names the student in a per-student table; a per-student
    table without one reaches the student through ``student_link`` (an ``events`` key).
    A deletion removes a student's rows, except where ``pseudonymise`` says to keep the rows
    and replace the student column by a keyed pseudonym (audit rows keep their count).
    ``privacy_record`` says why a table that names students is the deletion's own record
    and is kept (the request, the deny-list), so the deletion does not walk it.
    ``staff_column`` names a staff member (an Employee_ID) in tables about staff: not student
    data, but a district's deletion reaches them through its district column.
    ``reach`` says how a student is found where no column names them reliably."""

    name: str
    what: str
    columns: tuple[str, ...] = ()
    district_column: str | None = "district_id"
    holds_students: bool = False
    student_column: str | None = None
    student_link: str | None = None
    pseudonymise: bool = False
    privacy_record: str = ""
    staff_column: str | None = None
    reach: str = ""

    def __post_init__(self) -> None:
        if self.holds_students and not (self.student_column or self.student_link or self.reach):
            raise ValueError(
                f"{self.name}: a per-student table needs a student column, a link or a reach"
            )
        if self.pseudonymise and not self.student_column:
            raise ValueError(f"{self.name}: pseudonymising needs the student column")
        if self.privacy_record and self.holds_students:
            raise ValueError(f"{self.name}: a privacy record is kept, not deleted")


_ROSTER_TAIL = ("is_active", "import_id", "version", "updated_at")
_DISTRICT_DATA = tuple(f"district_data_{n}" for n in range(1, 6))
# The columns a day's facts are summed into (daily_facts, and the rollups built from them).
_SUMMED = (
    "school_ms", "evening_ms", "lessons_started", "pre_quiz_sum", "pre_quiz_count",
    "post_quiz_sum", "post_quiz_count", "problems", "points", "tokens", "math_helps",
    "live_helps",
)  # fmt: skip

EVENTS = Table(
    "events",
    "every accepted app event, with its source partition and offset",
    columns=(
        "district_id", "student_id", "event_id", "event_type", "product", "occurred_at",
        "payload", "src_partition", "src_offset", "src_epoch",
    ),
    holds_students=True,
    student_column="student_id",
)  # fmt: skip
DAILY_FACTS = Table(
    "daily_facts",
    "one row per event and local day: usage ms, lessons, quizzes, problems, points, helps",
    columns=(
        "district_id", "student_id", "local_date", "event_id", "piece", "product",
        "occurred_at", "school_ms", "evening_ms", "lessons_started", "pre_quiz_sum",
        "pre_quiz_count", "post_quiz_sum", "post_quiz_count", "problems", "points", "tokens",
        "math_helps", "live_helps",
    ),
    holds_students=True,
    student_column="student_id",
)  # fmt: skip
LESSON_FACTS = Table(
    "lesson_facts",
    "lesson starts and outcomes; attempts and passes are resolved when read",
    columns=(
        "district_id", "student_id", "lesson_id", "occurred_at", "event_id", "local_date",
        "kind", "passed", "lesson_grade_level", "product",
    ),
    holds_students=True,
    student_column="student_id",
)  # fmt: skip
BENCHMARK_FACTS = Table(
    "benchmark_facts",
    "one row per benchmark result",
    columns=(
        "district_id", "student_id", "event_id", "occurred_at", "local_date",
        "benchmark_number", "quantile_measure", "instructional_level", "percentile_rank",
    ),
    holds_students=True,
    student_column="student_id",
)  # fmt: skip
PENDING_FACTS = Table(
    "pending_facts",
    "events stored before their district was configured (facts follow once it is)",
    columns=("district_id", "event_id", "resolved"),
    holds_students=True,
    student_link="event_id",
)
DAILY_ROLLUPS = Table(
    "daily_rollups",
    "exact per-(student, local day) sums of daily_facts, rebuilt from the facts (exports)",
    columns=(
        "district_id", "student_id", "local_date", *_SUMMED, "last_key", "products", "fact_rows",
    ),
    holds_students=True,
    student_column="student_id",
)  # fmt: skip
LESSON_ROLLUPS = Table(
    "lesson_rollups",
    "resolved attempts and passes per (student, lesson), rebuilt from lesson_facts (exports)",
    columns=("district_id", "student_id", "lesson_id", "attempts", "passes", "fact_rows"),
    holds_students=True,
    student_column="student_id",
)
MONTHLY_ROLLUPS = Table(
    "monthly_rollups",
    "per-(student, month) sums and passes, built from the daily and lesson rollups (exports)",
    columns=(
        "district_id", "student_id", "month", *_SUMMED, "last_key", "products", "passes",
        "version",
    ),
    holds_students=True,
    student_column="student_id",
)  # fmt: skip
ROLLUP_WATERMARKS = Table(
    "rollup_watermarks",
    "how far the rollups are complete: the last closed day per district, the dirty keys done",
    columns=("district_id", "mark", "value", "updated_at"),
)
ROLLUP_DIRTY = Table(
    "rollup_dirty",
    "rollup keys of late facts (a day already ended), to rebuild in the background",
    columns=("seq", "district_id", "student_id", "local_date", "lesson_id"),
    holds_students=True,
    student_column="student_id",
)
ROSTER_STUDENTS = Table(
    "roster_students",
    "latest roster record per student (sourced_id: the OneRoster key, empty otherwise)",
    columns=(
        "district_id", "student_id", "first_name", "last_name", "grade", "building",
        "is_ell", "is_iep", *_DISTRICT_DATA, "sourced_id", *_ROSTER_TAIL,
    ),
    holds_students=True,
    student_column="student_id",
)  # fmt: skip
ROSTER_STUDENTS_HISTORY = Table(
    "roster_students_history",
    "every published version of every student (grade at any time)",
    columns=ROSTER_STUDENTS.columns,
    holds_students=True,
    student_column="student_id",
)
ROSTER_USERS = Table(
    "roster_users",
    "staff: ids, names, e-mail (to mail export links), user type, buildings",
    columns=(
        "district_id", "employee_id", "username", "email", "first_name", "last_name",
        "user_type", "buildings", "sourced_id", "password_hash", "password_set_at",
        *_ROSTER_TAIL,
    ),
    staff_column="employee_id",
)  # fmt: skip
ROSTER_LINKS = Table(
    "roster_links",
    "teacher-student links",
    columns=("district_id", "employee_id", "student_id", *_ROSTER_TAIL),
    holds_students=True,
    student_column="student_id",
    staff_column="employee_id",
)
ROSTER_ONEROSTER_STATE = Table(
    "roster_oneroster_state",
    "the OneRoster importer's state buckets (orgs, classes, users, enrollments), as published",
    columns=("district_id", "key", "doc", "version", "updated_at"),
    holds_students=True,
    reach=(
        "A row is one bucket of a district's OneRoster rows (`doc`: JSON, `rows` keyed by"
        " sourcedId), so no column names one student. A student is the users row with role"
        " student and identifier = the student id, and the enrollments rows whose"
        " userSourcedId is that row's sourcedId. To delete a student: publish the buckets"
        " rewritten without them (abacus/roster/oneroster/state.py), then delete the older"
        " versions of those keys (rows WHERE district_id = d AND key = k AND version < the"
        " rewrite's); a whole district: rows WHERE district_id = d."
    ),
)
DISTRICTS = Table(
    "districts",
    "each district's validated config",
    columns=("district_id", "name", "timezone", "config_json", "version", "updated_at"),
)
AUDIT_LOG = Table(
    "audit_log",
    "the audit trail: sign-ins, resets, export requests, downloads, refusals, deletions,"
    " re-enables (abacus/audit.py)",
    columns=("at", "district_id", "actor", "action", "target", "detail", "remote"),
    holds_students=True,
    student_column="target",
    pseudonymise=True,
    staff_column="actor",
)
PORTAL_CREDENTIALS = Table(
    "portal_credentials",
    "passwords staff set in the portal (argon2id hashes), apart from the roster's",
    columns=("district_id", "employee_id", "password_hash", "set_at", "updated_at"),
    staff_column="employee_id",
)
EXPORT_JOBS = Table(
    "export_jobs",
    "every export request and its latest status (the portal's lists)",
    columns=(
        "district_id",
        "request_id",
        "requester",
        "product",
        "range_kind",
        "start",
        "end",
        "status",
        "reason",
        "rows",
        "bytes",
        "requested_at",
        "updated_at",
        "version",
    ),
    staff_column="requester",
)
PRIVACY_REQUESTS = Table(
    "privacy_requests",
    "every deletion request, its status and its signed receipt",
    columns=(
        "district_id", "request_id", "kind", "requester", "reason", "student_ids",
        "student_pseudonyms", "status", "requested_at", "completed_at", "receipt", "version",
    ),
    privacy_record="the request and its receipt prove the deletion; mutations name their"
    " students through it, never in their own text",
)  # fmt: skip
PRIVACY_DENY = Table(
    "privacy_deny",
    "the deny-list: deleted students (or districts) whose late data ingest drops",
    columns=(
        "district_id", "student_id", "request_id", "deleted_at", "reenabled_at", "version",
    ),
    privacy_record="without it a late or replayed event would bring a deleted student back",
)  # fmt: skip
EXPORT_REQUESTS = Table(
    "export_requests",
    "every export request id used per district: its requester and a digest of the request",
    columns=("district_id", "request_id", "requester", "payload_sha256", "requested_at"),
    staff_column="requester",
)
DEAD_LETTERS = Table(
    "dead_letters",
    "every dead letter with the original record bytes (the durable copy of the DLQ topic)",
    columns=(
        "epoch", "src_topic", "src_partition", "src_offset", "key", "value", "reason",
        "failed_at",
    ),
    district_column=None,
    holds_students=True,
    student_column="key",
    reach=(
        "A dead letter is a record that failed decoding or validation, so no district or"
        " student column can be filled from it reliably: `value` holds the raw bytes"
        " (student data when they decode at all). The event contract keys every record by"
        " student_id, so `key` is the student for a well-behaved producer; a mis-keyed"
        " record (reason key_mismatch) or one without a key names its student only inside"
        " `value`. To delete a student: rows WHERE key = the student id, and rows whose"
        " `value` contains the id (position(value, id) > 0), in every district."
    ),
)  # fmt: skip
SCHEMA_MIGRATIONS = Table(
    "schema_migrations",
    "applied migrations (created by the migration runner itself)",
    columns=("version", "name"),
    district_column=None,
)

SUMMED_COLUMNS = _SUMMED

TABLES: tuple[Table, ...] = (
    EVENTS,
    DAILY_FACTS,
    LESSON_FACTS,
    BENCHMARK_FACTS,
    PENDING_FACTS,
    DAILY_ROLLUPS,
    LESSON_ROLLUPS,
    MONTHLY_ROLLUPS,
    ROLLUP_WATERMARKS,
    ROLLUP_DIRTY,
    ROSTER_STUDENTS,
    ROSTER_STUDENTS_HISTORY,
    ROSTER_USERS,
    ROSTER_LINKS,
    ROSTER_ONEROSTER_STATE,
    DISTRICTS,
    AUDIT_LOG,
    PORTAL_CREDENTIALS,
    EXPORT_JOBS,
    PRIVACY_REQUESTS,
    PRIVACY_DENY,
    EXPORT_REQUESTS,
    DEAD_LETTERS,
    SCHEMA_MIGRATIONS,
)
_BY_NAME = {t.name: t for t in TABLES}


def table(name: str) -> Table:
    """The catalog entry of ``name``; KeyError for a table the catalog does not know."""
    return _BY_NAME[name]


def student_tables() -> tuple[Table, ...]:
    """Every table holding per-student data, in catalog order."""
    return tuple(t for t in TABLES if t.holds_students)


def staff_tables() -> tuple[Table, ...]:
    """Every table naming staff members (``staff_column``), in catalog order."""
    return tuple(t for t in TABLES if t.staff_column)
