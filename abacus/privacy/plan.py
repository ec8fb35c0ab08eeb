"""The deletion plan: which tables a deletion reaches and with which predicates (pure).

Built from the table catalog, so a table added to it is deleted from (or pseudonymised)
without anyone remembering to: a student deletion walks every per-student table, a district
deletion every table with a district column. Predicates name students only through the
request's row in `privacy_requests` (a subquery on its request id): no student id is ever
written into a mutation's text (ClickHouse keeps that in `system.mutations` and in its
`mutation_*.txt` files) nor into a query the server logs.

Tables with no district column (`dead_letters`) hold raw records whose district is only
known by decoding them, and tables where no column names a student (only the catalog's
``reach``: `roster_oneroster_state`, JSON buckets of OneRoster rows) are matched by reading
their content; the plan leaves finding those rows to the caller (`content_tables`) and
names them by position (`dead_letter_step`, `oneroster_state_step`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from abacus.catalog import (
    AUDIT_LOG,
    DEAD_LETTERS,
    EVENTS,
    ROSTER_ONEROSTER_STATE,
    TABLES,
    Table,
    student_tables,
)

__all__ = [
    "DELETION_ACTIONS_KEPT",
    "Step",
    "content_tables",
    "dead_letter_step",
    "district_plan",
    "oneroster_state_step",
    "student_plan",
]

# Audit actions a district deletion keeps: the record of the deletion itself.
DELETION_ACTIONS_KEPT = "deletion.%"

_REQUEST = "FROM {db}.privacy_requests WHERE district_id = {d:String} AND request_id = {r:String}"
_TARGETS = f"SELECT arrayJoin(student_ids) {_REQUEST}"


@dataclass(frozen=True)
class Step:
    """One table's part of a deletion. ``where`` selects what to remove (or pseudonymise);
    ``check`` must count 0 rows afterwards (the receipt's verification query)."""

    table: Table
    action: Literal["delete", "pseudonymise"]
    where: str
    check: str
    params: tuple[tuple[str, str], ...]

    def sql(self, db: str, predicate: str) -> str:
        return predicate.replace("{db}", db)

    def mutation_sql(self, db: str, predicate: str | None = None) -> str:
        """The ALTER TABLE … DELETE (or … UPDATE to the pseudonyms) of this step, on its
        ``where`` unless another predicate is given (its ``check``, for a second pass)."""
        head = f"ALTER TABLE {db}.{self.table.name}"
        where = self.sql(db, predicate or self.where)
        if self.action == "delete":
            return f"{head} DELETE WHERE {where}"
        column = self.table.student_column
        ids = self.sql(db, f"(SELECT student_ids {_REQUEST} LIMIT 1)")
        pseudonyms = self.sql(db, f"(SELECT student_pseudonyms {_REQUEST} LIMIT 1)")
        value = f"transform({column}, {ids}, {pseudonyms}, {column})"
        return f"{head} UPDATE {column} = {value} WHERE {where}"

    def count_sql(self, db: str) -> str:
        """Rows the step will remove (counted before, all parts, no FINAL)."""
        return f"SELECT count() FROM {db}.{self.table.name} WHERE {self.sql(db, self.where)}"  # noqa: S608

    def check_sql(self, db: str) -> str:
        return f"SELECT count() FROM {db}.{self.table.name} WHERE {self.sql(db, self.check)}"  # noqa: S608

    @property
    def parameters(self) -> dict[str, str]:
        return dict(self.params)


def _student_step(table: Table, district_id: str, request_id: str) -> Step:
    params = (("d", district_id), ("r", request_id))
    in_district = f"{table.district_column} = {{d:String}}"
    events_in_district = f"{EVENTS.district_column} = {{d:String}}"
    if table.student_column is not None:
        where = f"{in_district} AND {table.student_column} IN ({_TARGETS})"
        action: Literal["delete", "pseudonymise"] = (
            "pseudonymise" if table.pseudonymise else "delete"
        )
        return Step(table, action, where, where, params)
    link = table.student_link
    where = (
        f"{in_district} AND {link} IN (SELECT {link} FROM {{db}}.{EVENTS.name} "  # noqa: S608
        f"WHERE {events_in_district} AND {EVENTS.student_column} IN ({_TARGETS}))"
    )
    # Once the student's events are gone, a row of theirs would be an orphan: none may be
    # left whose event no longer exists. The events looked up are only those this table
    # names (a semi-join): a set of every event of the district (59M at 100k students)
    # took 40 s to build, and this table is small (events of unconfigured districts).
    own = f"SELECT {link} FROM {{db}}.{table.name} WHERE {in_district}"  # noqa: S608
    check = (
        f"{in_district} AND {link} NOT IN (SELECT {link} FROM {{db}}.{EVENTS.name} "  # noqa: S608
        f"WHERE {events_in_district} AND {link} IN ({own}))"
    )
    return Step(table, "delete", where, check, params)


def _by_column(table: Table) -> bool:
    """Whether SQL alone finds a student's rows: a district and a student column or link."""
    return table.district_column is not None and bool(table.student_column or table.student_link)


def student_plan(district_id: str, request_id: str) -> list[Step]:
    """Every per-student table with a district column and a student column or link; tables
    reached through an events key come first (their predicate reads `events`)."""
    tables = [t for t in student_tables() if _by_column(t)]
    ordered = sorted(tables, key=lambda t: t.student_link is None)
    return [_student_step(t, district_id, request_id) for t in ordered]


def district_plan(district_id: str) -> list[Step]:
    """Every table with a district column except the privacy records; the audit trail keeps
    the entries about deletions (who asked, when, how much was removed)."""
    steps = []
    params = (("d", district_id),)
    for table in TABLES:
        if table.district_column is None or table.privacy_record:
            continue
        where = f"{table.district_column} = {{d:String}}"
        if table is AUDIT_LOG:
            where += f" AND action NOT LIKE '{DELETION_ACTIONS_KEPT}'"
        steps.append(Step(table, "delete", where, where, params))
    return steps


def content_tables() -> tuple[Table, ...]:
    """Per-student tables a student's rows are found in by content (no district column, or
    no column naming the student): the caller matches them (see the module docstring)."""
    return tuple(t for t in student_tables() if not _by_column(t))


# How a dead letter is named: its position (the table's sorting key), never its content.
DEAD_LETTER_KEY = ("epoch", "src_topic", "src_partition", "src_offset")


def _literal(value: str | int) -> str:
    if isinstance(value, int):
        return str(value)
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def dead_letter_step(positions: list[tuple[str, str, int, int]]) -> Step:
    """Delete these dead letters (matched by decoding them: they have no district column),
    named by position; with none, a step that removes and checks nothing."""
    if not positions:
        return Step(DEAD_LETTERS, "delete", "0", "0", ())
    tuples = ", ".join(
        "(" + ", ".join(_literal(v) for v in position) + ")" for position in sorted(set(positions))
    )
    where = f"({', '.join(DEAD_LETTER_KEY)}) IN ({tuples})"
    return Step(DEAD_LETTERS, "delete", where, where, ())


# How a OneRoster state row is named: its bucket key (a district, a file and a bucket
# number, never a person), its version and a hash of its document, so the bucket rewritten
# without the students (same key and version, other content) is not.
ONEROSTER_STATE_ROW = ("key", "version", "cityHash64(doc)")
_IDS = f"(SELECT student_ids {_REQUEST} LIMIT 1)"
# A users bucket holding one of the students: a row with role student and their identifier.
_STATE_HOLDS_USER = (
    "JSONExtractString(doc, 'file') = 'users.csv' AND arrayExists(row -> "
    "JSONExtractString(tupleElement(row, 2), 'role') = 'student' AND "
    f"has({_IDS}, JSONExtractString(tupleElement(row, 2), 'identifier')), "
    "JSONExtractKeysAndValuesRaw(doc, 'rows'))"
)


def oneroster_state_step(
    district_id: str, request_id: str, rows: list[tuple[str, int, int]]
) -> Step:
    """Delete these rows of `roster_oneroster_state` (every stored version of a bucket that
    holds the students' users rows or their enrollments, found by decoding them), named by
    ``ONEROSTER_STATE_ROW``. The check counts those rows and, by content, any users row of
    the students left in the district (student ids only through the request's row)."""
    params = (("d", district_id), ("r", request_id))
    in_district = f"{ROSTER_ONEROSTER_STATE.district_column} = {{d:String}}"
    if rows:
        tuples = ", ".join(
            "(" + ", ".join(_literal(v) for v in row) + ")" for row in sorted(set(rows))
        )
        named = f"({', '.join(ONEROSTER_STATE_ROW)}) IN ({tuples})"
    else:
        named = "0"
    where = f"{in_district} AND {named}"
    check = f"{in_district} AND ({named} OR {_STATE_HOLDS_USER})"
    return Step(ROSTER_ONEROSTER_STATE, "delete", where, check, params)
