"""Deleted students are kept out of a roster upload: records, links and OneRoster state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from abacus.privacy.deny import WHOLE_DISTRICT, DenyEntry, DenyList
from abacus.roster.denied import drop_denied, skipped_note
from abacus.roster.oneroster.state import state_without_students
from abacus.roster.records import RosterKind

NOW = datetime(2026, 12, 2, 12, tzinfo=UTC)
D = "maple"


def _fields() -> dict[RosterKind, dict[str, dict[str, str]]]:
    return {
        RosterKind.USERS: {f"{D}|0101": {"employee_id": "0101"}},
        RosterKind.STUDENTS: {f"{D}|{s}": {"student_id": s} for s in ("1", "2", "3")},
        RosterKind.LINKS: {f"{D}|01|01|{s}": {"student_id": s} for s in ("1", "2", "3")},
    }


def _entry(student: str, district: str = D, reenabled: datetime | None = None) -> DenyEntry:
    return DenyEntry(district, student, "del-1", NOW - timedelta(days=1), reenabled)


def test_denied_students_lose_their_records_and_links_only() -> None:
    fields = _fields()
    deny = DenyList([_entry("2"), _entry("3", district="other")])
    assert drop_denied(fields, D, deny, NOW) == {"2"}
    assert set(fields[RosterKind.STUDENTS]) == {f"{D}|1", f"{D}|3"}
    # A staff id holding "|" still names the right student (the key's last part).
    assert set(fields[RosterKind.LINKS]) == {f"{D}|01|01|1", f"{D}|01|01|3"}
    assert len(fields[RosterKind.USERS]) == 1


def test_a_re_enabled_student_is_imported_and_a_deleted_district_imports_no_student() -> None:
    fields = _fields()
    reenabled = DenyList([_entry("1", reenabled=NOW - timedelta(hours=1))])
    assert drop_denied(fields, D, reenabled, NOW) == set()
    assert drop_denied(fields, D, DenyList([_entry(WHOLE_DISTRICT)]), NOW) == {"1", "2", "3"}
    assert fields[RosterKind.STUDENTS] == {}
    assert fields[RosterKind.LINKS] == {}
    assert len(fields[RosterKind.USERS]) == 1  # staff may come back with a new contract


def test_the_oneroster_state_loses_the_students_users_rows_and_enrollments() -> None:
    state = {
        "orgs.csv": {"o1": {"name": "School"}},
        "classes.csv": {"c1": {"schoolSourcedId": "o1"}},
        "users.csv": {
            "u1": {"role": "student", "identifier": "1"},
            "u2": {"role": "student", "identifier": "2"},
            "t1": {"role": "teacher", "identifier": "2"},  # staff with the same identifier
        },
        "enrollments.csv": {
            "e1": {"userSourcedId": "u1", "classSourcedId": "c1"},
            "e2": {"userSourcedId": "u2", "classSourcedId": "c1"},
            "e3": {"userSourcedId": "t1", "classSourcedId": "c1"},
        },
    }
    out = state_without_students(state, {"2"})
    assert set(out["users.csv"]) == {"u1", "t1"}
    assert set(out["enrollments.csv"]) == {"e1", "e3"}
    assert out["orgs.csv"] == state["orgs.csv"]
    assert out["classes.csv"] == state["classes.csv"]
    assert state_without_students(state, set()) is state


def test_the_note_counts_and_never_names() -> None:
    assert skipped_note(0) == ""
    assert skipped_note(1).startswith("1 student was not imported")
    assert skipped_note(1200).startswith("1,200 students were not imported")
