"""The table catalog and the migrations agree: no table forgotten, no column invented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from abacus.catalog import TABLES, staff_tables, student_tables, table
from abacus.store.migrations import migration_files

_CREATE = re.compile(
    r"CREATE TABLE IF NOT EXISTS \{db\}\.(\w+)\s*(AS \{db\}\.(\w+)|\((.*?)\)\s*ENGINE)", re.S
)
_DROP = re.compile(r"DROP TABLE IF EXISTS \{db\}\.(\w+)")
_ALTER = re.compile(r"ALTER TABLE \{db\}\.(\w+)\s+(.*?);", re.S)
_ADD = re.compile(r"ADD COLUMN IF NOT EXISTS (\w+)")


def migrated_tables() -> dict[str, set[str]]:
    """Table -> column names, read from the migration files in order: created, altered
    (ADD COLUMN), dropped (schema_migrations is made by the migration runner; views are not
    tables)."""
    out: dict[str, set[str]] = {"schema_migrations": {"version", "name", "applied_at"}}
    for _, _, sql in migration_files():
        text = "\n".join(ln for ln in sql.splitlines() if not ln.lstrip().startswith("--"))
        for name, _, copied, body in _CREATE.findall(text):
            if copied:
                out[name] = set(out[copied])
            else:
                out[name] = {ln.split()[0] for ln in body.splitlines() if ln.strip()}
        for name, clauses in _ALTER.findall(text):
            out[name] |= set(_ADD.findall(clauses))
        for name in _DROP.findall(text):
            out.pop(name, None)  # IF EXISTS
    return out


def test_every_migrated_table_is_in_the_catalog_and_nothing_else() -> None:
    assert sorted(t.name for t in TABLES) == sorted(migrated_tables())


@pytest.mark.parametrize("entry", TABLES, ids=lambda t: t.name)
def test_catalog_columns_exist_in_the_table(entry: object) -> None:
    columns = migrated_tables()[entry.name]  # type: ignore[attr-defined]
    named = {
        entry.district_column,  # type: ignore[attr-defined]
        entry.student_column,  # type: ignore[attr-defined]
        entry.student_link,  # type: ignore[attr-defined]
        entry.staff_column,  # type: ignore[attr-defined]
    } - {None}
    assert set(entry.columns) <= columns  # type: ignore[attr-defined]
    assert named <= columns


def test_student_tables_are_the_ones_with_a_student() -> None:
    names = {t.name for t in student_tables()}
    assert names == {
        "events", "daily_facts", "lesson_facts", "benchmark_facts", "pending_facts",
        "daily_rollups", "lesson_rollups", "monthly_rollups", "rollup_dirty",
        "roster_students", "roster_students_history", "roster_links",
        "roster_oneroster_state", "dead_letters", "audit_log",
    }  # fmt: skip
    assert table("audit_log").pseudonymise
    assert table("pending_facts").student_link == "event_id"
    # Raw record bytes: no reliable district, the record key is the student (contract).
    dead = table("dead_letters")
    assert (dead.district_column, dead.student_column) == (None, "key")
    assert "value" in dead.reach
    # The OneRoster importer's buckets: many students per row, reached through `doc`.
    state = table("roster_oneroster_state")
    assert (state.student_column, state.student_link) == (None, None)
    assert "identifier" in state.reach
    with pytest.raises(KeyError):
        table("nope")


def test_staff_tables_name_their_staff_member() -> None:
    names = {t.name: t.staff_column for t in staff_tables()}
    assert names == {
        "roster_users": "employee_id", "roster_links": "employee_id", "audit_log": "actor",
        "portal_credentials": "employee_id", "export_jobs": "requester",
        "export_requests": "requester",
    }  # fmt: skip
    assert all(t.district_column == "district_id" for t in staff_tables())


def test_sql_in_the_code_names_only_catalog_tables() -> None:
    root = Path(__file__).resolve().parents[2]
    named: set[str] = set()
    for package in ("abacus", "streams", "consumers"):
        for path in (root / package).rglob("*.py"):
            named |= set(re.findall(r"\{db\}\.([a-z_]+)", path.read_text()))
    assert named, "the pattern must find the SQL texts"
    assert named <= {t.name for t in TABLES}


def test_every_table_naming_students_is_deleted_from_or_is_a_privacy_record() -> None:
    """A table with a student column that the catalog forgot to mark would survive a
    deletion: each is either walked by it or is the deletion's own record (kept)."""
    naming = {"student_id", "student_ids"}
    for name, columns in migrated_tables().items():
        if columns & naming:
            entry = table(name)
            assert entry.holds_students or entry.privacy_record, name
    assert {t.name for t in TABLES if t.privacy_record} == {"privacy_requests", "privacy_deny"}
