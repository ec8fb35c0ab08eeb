"""OneRoster 1.1 packages -> roster records: one broken package per rule, the mapping, and
bulk/delta semantics (pure: no broker; the topics are stood in for by plain dicts)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from abacus.roster import records as rec
from abacus.roster.diff import RosterDiff, diff_records
from abacus.roster.oneroster.manifest import parse_manifest
from abacus.roster.oneroster.state import State, bucket_records, decode_state, empty_state
from abacus.roster.oneroster.upload import OneRosterUpload, build_upload
from abacus.roster.records import RosterKind
from abacus.roster.validation import read_roster_dir, validate_roster
from tests.support.oneroster import DELTA_TIME, Package, as_delta, from_upload, guid

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TODAY = date(2026, 1, 20)
D = "mv"
USERS, STUDENTS, LINKS = RosterKind.USERS, RosterKind.STUDENTS, RosterKind.LINKS


@pytest.fixture(scope="module")
def example() -> Package:
    return from_upload(EXAMPLES / "district")


def run(pkg: Package, old: State | None = None) -> OneRosterUpload:
    files = pkg.files()
    manifest = parse_manifest(files.get("manifest.csv"))
    return build_upload(D, manifest, files, frozenset(files), old or empty_state(), today=TODAY)


def where(upload: OneRosterUpload) -> dict[tuple[str, int, str], str]:
    return {(e.file, e.line, e.column): e.reason for e in upload.errors}


def published(upload: OneRosterUpload, kind: RosterKind) -> dict[str, dict[str, Any]]:
    """The topic documents an import of `upload` leaves (envelope reduced to is_active)."""
    return {key: {"is_active": True, **fields} for key, fields in upload.fields[kind].items()}


def reimport(
    current: dict[str, dict[str, Any]], upload: OneRosterUpload, kind: RosterKind
) -> RosterDiff:
    return diff_records(current, upload.fields[kind], keep=upload.keep(kind, current))


def student_sid(pkg: Package, student_id: str) -> str:
    return pkg.find("users.csv", identifier=student_id)["sourcedId"]


# --- the valid package ----------------------------------------------------------------------


def test_the_equivalent_package_maps_onto_the_upload_documents_records(example: Package) -> None:
    upload = run(example)
    assert upload.errors == []
    easy = validate_roster(read_roster_dir(EXAMPLES / "district"), today=TODAY)
    want_users = {f"{D}|{u.employee_id}": rec.user_fields(u) for u in easy.users}
    want_users[f"{D}|0501"]["user_type"] = 3  # OneRoster has no admin level: district
    got = {
        k: {n: v for n, v in f.items() if n != "sourced_id"}
        for k, f in upload.fields[USERS].items()
    }
    assert got == want_users
    want_students = {f"{D}|{s.student_id}": rec.student_fields(s) for s in easy.students}
    got = {
        k: {n: v for n, v in f.items() if n != "sourced_id"}
        for k, f in upload.fields[STUDENTS].items()
    }
    assert got == want_students
    assert set(upload.fields[LINKS]) == {f"{D}|{k.employee_id}|{k.student_id}" for k in easy.links}
    # The stable map: every record carries the sourcedId it came from.
    assert upload.fields[STUDENTS][f"{D}|20001"]["sourced_id"] == student_sid(example, "20001")
    assert upload.accepted == {USERS: 8, STUDENTS: 40, LINKS: 55}
    assert upload.rejected == {USERS: 0, STUDENTS: 0, LINKS: 0}
    assert "users.csv (bulk): 48 accepted, 0 rejected" in upload.notes


def test_a_bom_crlf_and_metadata_columns_are_tolerated(example: Package) -> None:
    pkg = example.copy()
    pkg.metadata["orgs.csv"] = ["metadata.region"]
    pkg.raw["users.csv"] = b"\xef\xbb\xbf" + pkg.file_bytes("users.csv").replace(b"\n", b"\r\n")
    assert run(pkg).errors == []


# --- header rules -----------------------------------------------------------------------------


def header_errors(pkg: Package) -> dict[tuple[str, int, str], str]:
    upload = run(pkg)
    return {k: v for k, v in where(upload).items() if k[1] == 1}


@pytest.mark.parametrize(
    ("change", "column", "reason"),
    [
        (
            lambda h: h.__setitem__(slice(8, 10), ["familyName", "givenName"]),
            "familyName",
            "column out of order",
        ),
        (lambda h: h.remove("role"), "role", "missing required column"),
        (lambda h: h.remove("sms"), "sms", "missing column (every spec column"),
        (
            lambda h: h.__setitem__(0, "SourcedId"),
            "SourcedId",
            "headers are case-sensitive: write 'sourcedId'",
        ),
        (lambda h: h.append("nickname"), "nickname", "unknown column"),
        (lambda h: h.insert(3, "metadata.early"), "metadata.early", "extension columns go after"),
        (lambda h: h.append("role"), "role", "duplicate column"),
    ],
)
def test_a_bad_header_rejects_the_file(
    example: Package, change: Any, column: str, reason: str
) -> None:
    pkg = example.copy()
    header = pkg.header("users.csv")
    change(header)
    pkg.headers["users.csv"] = header
    upload = run(pkg)
    errors = header_errors(pkg)
    assert reason in errors[("users.csv", 1, column)]
    # The file is not used: no users, so every enrollment points at a user that is not there.
    assert upload.fields[USERS] == upload.fields[STUDENTS] == {}
    assert all(e.column == "userSourcedId" for e in upload.errors if e.file == "enrollments.csv")


def test_an_empty_file_and_a_missing_file_are_reported(example: Package) -> None:
    pkg = example.copy()
    pkg.raw["orgs.csv"] = b""
    del pkg.rows["courses.csv"]
    errors = where(run(pkg))
    assert errors[("orgs.csv", 0, "")] == "file is empty (no header row)"
    assert errors[("courses.csv", 0, "")] == "file is missing (manifest.csv says bulk)"


# --- values -----------------------------------------------------------------------------------


def break_row(pkg: Package, file: str, match: dict[str, str], **values: str) -> int:
    row = pkg.find(file, **match)
    row.update(values)
    return pkg.rows[file].index(row) + 2


@pytest.mark.parametrize(
    ("file", "column", "value", "reason"),
    [
        ("orgs.csv", "type", "campus", "must be one of department, school, district"),
        ("users.csv", "role", "Teacher", "(case-sensitive: 'teacher')"),
        ("users.csv", "enabledUser", "yes", "must be one of true, false"),
        ("classes.csv", "classType", "lab", "must be one of homeroom, scheduled"),
        (
            "enrollments.csv",
            "role",
            "aide",
            "must be one of administrator, proctor, student, teacher",
        ),
        ("enrollments.csv", "beginDate", "2025-02-30", "not a real calendar date"),
        ("enrollments.csv", "beginDate", "08/15/2025", "must be a date YYYY-MM-DD"),
        ("academicSessions.csv", "schoolYear", "25", "must be a year YYYY"),
        ("academicSessions.csv", "endDate", "2025-01-01", "before startDate"),
        ("demographics.csv", "sex", "F", "must be one of male, female"),
        ("demographics.csv", "birthDate", "2027-01-01", "date is in the future"),
        ("users.csv", "email", "not-an-email", "not an email address"),
        ("users.csv", "givenName", "", "required value is blank"),
        ("users.csv", "orgSourcedIds", "a,,b", "empty entry in a comma-separated list"),
        ("users.csv", "metadata.ell", "maybe", "must be true/false, Y/N, yes/no or 1/0"),
    ],
)
def test_a_bad_value_rejects_its_row_with_file_line_column_and_reason(
    example: Package, file: str, column: str, value: str, reason: str
) -> None:
    pkg = example.copy()
    row = pkg.rows[file][-1]
    row[column] = value
    line = len(pkg.rows[file]) + 1
    upload = run(pkg)
    assert reason in where(upload)[(file, line, column)]
    assert {(e.file, e.line) for e in upload.errors} >= {(file, line)}


def test_personal_values_are_masked_in_the_report(example: Package) -> None:
    pkg = example.copy()
    line = break_row(pkg, "users.csv", {"identifier": "20002"}, givenName="Jun\x07iper")
    line2 = break_row(pkg, "users.csv", {"identifier": "20003"}, **{"metadata.ell": "maybe"})
    line3 = break_row(pkg, "demographics.csv", {}, birthDate="2020-13-01")
    errors = {(e.line, e.column): e.value for e in run(pkg).errors}
    assert errors[(line, "givenName")] == "J***"
    assert errors[(line2, "metadata.ell")] == "m***"
    assert errors[(line3, "birthDate")] == "2***"


@pytest.mark.parametrize(
    ("grades", "reason"),
    [
        ("UG", "UG (ungraded) is not rostered"),
        ("PR", "PR (preschool (before PreK)) is not rostered"),
        ("13", "13 (grade 13) is not rostered"),
        ("K", "not a CEDS grade code"),
        ("3", "(two digits: 03)"),
        ("kg", "(codes are case-sensitive)"),
        ("03,04", "a student has one grade level"),
        ("", "required for students"),
    ],
)
def test_a_students_grade_must_be_one_rostered_ceds_code(
    example: Package, grades: str, reason: str
) -> None:
    pkg = example.copy()
    line = break_row(pkg, "users.csv", {"identifier": "20020"}, grades=grades)
    upload = run(pkg)
    assert reason in where(upload)[("users.csv", line, "grades")]
    assert f"{D}|20020" not in upload.fields[STUDENTS]
    assert upload.rejected[STUDENTS] == 1


@pytest.mark.parametrize(
    ("ceds", "grade"),
    [("PK", "PK"), ("TK", "PK"), ("KG", "K"), ("01", "1"), ("12", "12"), ("KG,KG", "K")],
)
def test_ceds_grades_map_to_roster_grades(example: Package, ceds: str, grade: str) -> None:
    pkg = example.copy()
    break_row(pkg, "users.csv", {"identifier": "20020"}, grades=ceds)
    assert run(pkg).fields[STUDENTS][f"{D}|20020"]["grade"] == grade


def test_staff_grades_are_checked_but_never_needed(example: Package) -> None:
    pkg = example.copy()
    break_row(pkg, "users.csv", {"identifier": "0101"}, grades="KG,01,02")
    assert run(pkg).errors == []
    line = break_row(pkg, "users.csv", {"identifier": "0102"}, grades="Kinder")
    assert "not a CEDS grade code" in where(run(pkg))[("users.csv", line, "grades")]


def test_a_duplicate_sourced_id_rejects_the_later_row(example: Package) -> None:
    pkg = example.copy()
    pkg.rows["classes.csv"].append(dict(pkg.rows["classes.csv"][0]))
    line = len(pkg.rows["classes.csv"]) + 1
    assert (
        where(run(pkg))[("classes.csv", line, "sourcedId")]
        == "duplicate sourcedId (first at line 2)"
    )


# --- status and dateLastModified by mode ----------------------------------------------------


def test_a_bulk_file_keeps_status_and_date_last_modified_blank(example: Package) -> None:
    pkg = example.copy()
    line = break_row(pkg, "orgs.csv", {"type": "district"}, status="active")
    line2 = break_row(pkg, "classes.csv", {}, dateLastModified=DELTA_TIME)
    errors = where(run(pkg))
    assert errors[("orgs.csv", line, "status")] == "must be blank in a bulk file"
    assert errors[("classes.csv", line2, "dateLastModified")] == "must be blank in a bulk file"


def test_a_delta_file_needs_a_status_and_a_date_time(example: Package) -> None:
    sid = student_sid(example, "20001")
    row = dict(example.find("users.csv", sourcedId=sid))
    delta = as_delta(
        example,
        {
            "users.csv": [
                {**row, "status": ""},
                {**row, "sourcedId": "x2", "identifier": "99", "status": "deleted"},
                {
                    **row,
                    "sourcedId": "x3",
                    "identifier": "98",
                    "status": "active",
                    "dateLastModified": "2026-01-15",
                },
            ]
        },
    )
    errors = where(run(delta, run(example).state))
    assert errors[("users.csv", 2, "status")] == "required in a delta file"
    assert errors[("users.csv", 3, "status")] == "must be active or tobedeleted"
    assert "ISO 8601 date-time" in errors[("users.csv", 4, "dateLastModified")]


# --- references between files ---------------------------------------------------------------


def test_dangling_references_reject_the_referring_row(example: Package) -> None:
    pkg = example.copy()
    enr = [r for r in pkg.rows["enrollments.csv"] if r["role"] == "student"]
    enr[0]["userSourcedId"] = "nobody"
    enr[1]["classSourcedId"] = "no-class"
    enr[2]["schoolSourcedId"] = pkg.find("orgs.csv", type="district")["sourcedId"]
    klass = pkg.find("classes.csv", title="Math 0202")
    klass["schoolSourcedId"] = "no-school"
    pkg.rows["users.csv"][0]["orgSourcedIds"] = "no-org"
    upload = run(pkg)
    errors = where(upload)
    line = pkg.rows["enrollments.csv"].index
    assert (
        errors[("enrollments.csv", line(enr[0]) + 2, "userSourcedId")]
        == "'nobody' not found in users.csv"
    )
    assert (
        errors[("enrollments.csv", line(enr[1]) + 2, "classSourcedId")]
        == "'no-class' not found in classes.csv"
    )
    assert errors[("enrollments.csv", line(enr[2]) + 2, "schoolSourcedId")].endswith(
        "is an org of type district, not school"
    )
    assert errors[("classes.csv", 6, "schoolSourcedId")] == "'no-school' not found in orgs.csv"
    assert errors[("users.csv", 2, "orgSourcedIds")] == "'no-org' not found in orgs.csv"
    # The class was rejected, so its enrollments point at a rejected row.
    assert any(
        e.column == "classSourcedId"
        and e.reason.endswith("refers to a rejected row of classes.csv")
        for e in upload.errors
    )


def test_an_enrollment_role_must_match_the_users_role(example: Package) -> None:
    pkg = example.copy()
    row = next(r for r in pkg.rows["enrollments.csv"] if r["role"] == "teacher")
    row["role"] = "student"
    line = pkg.rows["enrollments.csv"].index(row) + 2
    assert where(run(pkg))[("enrollments.csv", line, "role")] == (
        "enrolled as student but the user's role is teacher"
    )


def test_demographics_must_name_a_user_and_school_names_are_unique(example: Package) -> None:
    pkg = example.copy()
    pkg.rows["demographics.csv"][0]["sourcedId"] = "ghost"
    pkg.rows["orgs.csv"].append({"sourcedId": "org-x", "name": "Oak Elementary", "type": "school"})
    errors = where(run(pkg))
    assert errors[("demographics.csv", 2, "sourcedId")] == "not found in users.csv"
    assert errors[("orgs.csv", 5, "name")].startswith("another school has this name")


# --- mapping ------------------------------------------------------------------------------------


def test_staff_levels_come_from_role_and_org_type(example: Package) -> None:
    pkg = example.copy()
    schools = [r["sourcedId"] for r in pkg.rows["orgs.csv"] if r["type"] == "school"]
    district = pkg.find("orgs.csv", type="district")["sourcedId"]
    break_row(pkg, "users.csv", {"identifier": "0101"}, role="aide")
    break_row(pkg, "users.csv", {"identifier": "0301"}, orgSourcedIds=schools[1])
    break_row(pkg, "users.csv", {"identifier": "0401"}, orgSourcedIds=f"{schools[0]},{district}")
    break_row(pkg, "users.csv", {"identifier": "0501"}, identifier="")
    users = run(pkg).fields[USERS]
    assert users[f"{D}|0101"]["user_type"] == 1
    assert (users[f"{D}|0301"]["user_type"], users[f"{D}|0301"]["buildings"]) == (
        2,
        ["Cedar Middle School"],
    )
    assert (users[f"{D}|0401"]["user_type"], users[f"{D}|0401"]["buildings"]) == (
        3,
        ["Oak Elementary"],
    )
    sid = guid("staff", "0501")  # no identifier: the Employee_ID is the sourcedId
    assert users[f"{D}|{sid}"]["employee_id"] == sid


def test_a_teacher_without_a_school_is_rejected(example: Package) -> None:
    pkg = example.copy()
    district = pkg.find("orgs.csv", type="district")["sourcedId"]
    line = break_row(pkg, "users.csv", {"identifier": "0103"}, orgSourcedIds=district)
    klass = pkg.find("classes.csv", title="Math 0103")["sourcedId"]
    pkg.rows["enrollments.csv"] = [
        r for r in pkg.rows["enrollments.csv"] if r["classSourcedId"] != klass
    ]
    upload = run(pkg)
    assert where(upload)[("users.csv", line, "orgSourcedIds")].startswith("no school")
    assert f"{D}|0103" not in upload.fields[USERS]


def test_a_students_building_is_the_school_of_their_classes(example: Package) -> None:
    pkg = example.copy()
    oak, cedar = (
        pkg.find("orgs.csv", name=n)["sourcedId"] for n in ("Oak Elementary", "Cedar Middle School")
    )
    # 20001 is in the class of 0101 (Oak); its own org says Cedar: the class wins.
    break_row(pkg, "users.csv", {"identifier": "20001"}, orgSourcedIds=cedar)
    # 20008's two classes at two schools: the first of them in orgSourcedIds decides.
    pkg.find("classes.csv", title="Math 0102")["schoolSourcedId"] = cedar
    break_row(pkg, "users.csv", {"identifier": "20008"}, orgSourcedIds=f"{cedar},{oak}")
    # 20012 (0102, 0103) at two schools with none of them listed: rejected.
    line = break_row(
        pkg,
        "users.csv",
        {"identifier": "20012"},
        orgSourcedIds=pkg.find("orgs.csv", type="district")["sourcedId"],
    )
    upload = run(pkg)
    students = upload.fields[STUDENTS]
    assert students[f"{D}|20001"]["building"] == "Oak Elementary"
    assert students[f"{D}|20008"]["building"] == "Cedar Middle School"
    assert "classes at several schools" in where(upload)[("users.csv", line, "orgSourcedIds")]


def test_ell_iep_and_district_data_come_from_documented_columns(example: Package) -> None:
    pkg = example.copy()
    break_row(
        pkg, "users.csv", {"identifier": "20001"}, **{"metadata.ell": "yes", "metadata.iep": "1"}
    )
    break_row(
        pkg,
        "users.csv",
        {"identifier": "20002"},
        **{"metadata.ell": "", "metadata.iep": "", "metadata.district_data_2": ""},
    )
    pkg.metadata["users.csv"].append("metadata.district_data_4")
    break_row(pkg, "users.csv", {"identifier": "20003"}, **{"metadata.district_data_4": "Bus 7"})
    students = run(pkg).fields[STUDENTS]
    assert (students[f"{D}|20001"]["is_ell"], students[f"{D}|20001"]["is_iep"]) == (True, True)
    second = students[f"{D}|20002"]
    assert (second["is_ell"], second["is_iep"]) == (False, False)  # blank: False
    assert second["district_data_2"] == student_sid(pkg, "20002")  # default: the sourcedId
    assert second["district_data_1"] == "jthistlewick"  # username
    assert students[f"{D}|20003"]["district_data_4"] == "Bus 7"
    no_meta = example.copy()
    no_meta.metadata = {}
    students = run(no_meta).fields[STUDENTS]
    assert not any(s["is_ell"] or s["is_iep"] for s in students.values())


def test_parents_and_proctors_are_counted_not_rostered(example: Package) -> None:
    pkg = example.copy()
    school = pkg.find("orgs.csv", name="Oak Elementary")["sourcedId"]
    klass = pkg.rows["classes.csv"][0]["sourcedId"]
    for role in ("parent", "proctor"):
        pkg.rows["users.csv"].append(
            {
                "sourcedId": f"u-{role}",
                "enabledUser": "true",
                "orgSourcedIds": school,
                "role": role,
                "username": role,
                "givenName": "P",
                "familyName": "Q",
            }
        )
    pkg.rows["enrollments.csv"].append(
        {
            "sourcedId": "e-proctor",
            "classSourcedId": klass,
            "schoolSourcedId": school,
            "userSourcedId": "u-proctor",
            "role": "proctor",
        }
    )
    upload = run(pkg)
    assert upload.errors == []
    assert len(upload.fields[USERS]) == 8
    assert "users.csv (bulk): 50 accepted, 0 rejected, 2 not rostered" in "\n".join(upload.notes)


# --- the stable sourcedId map ------------------------------------------------------------------


def test_an_identifier_cannot_change_for_a_known_sourced_id(example: Package) -> None:
    first = run(example)
    pkg = example.copy()
    line = break_row(pkg, "users.csv", {"identifier": "20005"}, identifier="30005", givenName="Pip")
    upload = run(pkg, first.state)
    reason = where(upload)[("users.csv", line, "identifier")]
    assert reason.startswith("this sourcedId was published as '20005'")
    # The row is rejected: the earlier record stays, nothing is deactivated or added.
    diff = reimport(published(first, STUDENTS), upload, STUDENTS)
    assert (diff.new, diff.updated, diff.deactivated) == (0, 0, 0)
    assert upload.state["users.csv"][student_sid(pkg, "30005")]["identifier"] == "20005"


def test_two_sourced_ids_cannot_share_a_student_number(example: Package) -> None:
    first = run(example)
    pkg = example.copy()
    pkg.rows["users.csv"].append(
        {**pkg.find("users.csv", identifier="20006"), "sourcedId": "new-kid", "givenName": "Other"}
    )
    line = len(pkg.rows["users.csv"]) + 1
    upload = run(pkg, first.state)
    assert where(upload)[("users.csv", line, "identifier")].startswith(
        "another user has this StudentID"
    )
    assert upload.fields[STUDENTS][f"{D}|20006"]["first_name"] == "Marigold"


def test_a_delta_resolves_references_through_the_stored_state(example: Package) -> None:
    first = run(example)
    school = example.find("orgs.csv", name="Oak Elementary")["sourcedId"]
    klass = example.find("classes.csv", title="Math 0103")["sourcedId"]
    delta = as_delta(
        example,
        {
            "users.csv": [
                {
                    "sourcedId": "s-new",
                    "status": "active",
                    "enabledUser": "true",
                    "orgSourcedIds": school,
                    "role": "student",
                    "username": "newkid",
                    "givenName": "Nova",
                    "familyName": "Kid",
                    "identifier": "20041",
                    "grades": "02",
                }
            ],
            "enrollments.csv": [
                {
                    "sourcedId": "e-new",
                    "status": "active",
                    "classSourcedId": klass,
                    "schoolSourcedId": school,
                    "userSourcedId": "s-new",
                    "role": "student",
                }
            ],
        },
    )
    upload = run(delta, first.state)
    assert upload.errors == []
    diff = reimport(published(first, STUDENTS), upload, STUDENTS)
    assert (diff.new, diff.unchanged, diff.deactivated) == (1, 40, 0)
    links = reimport(published(first, LINKS), upload, LINKS)
    assert [c.key for c in links.changes] == [f"{D}|0103|20041"]
    assert upload.fields[STUDENTS][f"{D}|20041"]["building"] == "Oak Elementary"


# --- bulk and delta: what is deactivated ------------------------------------------------------


def test_a_bulk_reupload_deactivates_what_is_missing_and_publishes_nothing_else(
    example: Package,
) -> None:
    first = run(example)
    same = run(example, first.state)
    for kind in (USERS, STUDENTS, LINKS):
        diff = reimport(published(first, kind), same, kind)
        assert diff.changes == [], kind
    assert bucket_records(D, same.state) == bucket_records(D, first.state)
    pkg = example.copy()
    gone = student_sid(pkg, "20040")
    pkg.rows["users.csv"] = [r for r in pkg.rows["users.csv"] if r["sourcedId"] != gone]
    pkg.rows["enrollments.csv"] = [
        r for r in pkg.rows["enrollments.csv"] if r["userSourcedId"] != gone
    ]
    pkg.rows["demographics.csv"] = [
        r for r in pkg.rows["demographics.csv"] if r["sourcedId"] != gone
    ]
    upload = run(pkg, first.state)
    diff = reimport(published(first, STUDENTS), upload, STUDENTS)
    assert [(c.key, c.is_active) for c in diff.changes] == [(f"{D}|20040", False)]
    links = reimport(published(first, LINKS), upload, LINKS)
    assert {(c.key, c.is_active) for c in links.changes} == {
        (f"{D}|0201|20040", False),
        (f"{D}|0202|20040", False),
    }


def test_a_bulk_users_file_deactivates_records_it_did_not_produce(example: Package) -> None:
    """A bulk users.csv is the whole roster, as an upload-document import is."""
    first = run(example)
    current = published(first, STUDENTS)
    current[f"{D}|77777"] = {**current[f"{D}|20001"], "student_id": "77777", "is_active": True}
    diff = reimport(current, run(example, first.state), STUDENTS)
    assert [(c.key, c.is_active) for c in diff.changes] == [(f"{D}|77777", False)]


def test_delta_tobedeleted_deactivates_and_absent_files_stay_untouched(example: Package) -> None:
    first = run(example)
    gone = student_sid(example, "20010")
    enrollment = next(
        r
        for r in example.rows["enrollments.csv"]
        if r["userSourcedId"] == student_sid(example, "20024")
        and r["classSourcedId"] == example.find("classes.csv", title="Math 0102")["sourcedId"]
    )
    delta = as_delta(
        example,
        {
            "users.csv": [{"sourcedId": gone, "status": "tobedeleted"}],
            "enrollments.csv": [{"sourcedId": enrollment["sourcedId"], "status": "tobedeleted"}],
        },
    )
    current = published(first, STUDENTS)
    current[f"{D}|77777"] = {**current[f"{D}|20001"], "student_id": "77777", "is_active": True}
    upload = run(delta, first.state)
    assert upload.errors == []
    diff = reimport(current, upload, STUDENTS)
    # Only what the delta removed; a record the stored state never produced is not touched.
    assert [(c.key, c.is_active) for c in diff.changes] == [(f"{D}|20010", False)]
    links = reimport(published(first, LINKS), upload, LINKS)
    assert {(c.key, c.is_active) for c in links.changes} == {
        (f"{D}|0102|20010", False),
        (f"{D}|0102|20024", False),
    }
    assert upload.state["classes.csv"] == first.state["classes.csv"]  # absent: kept
    assert upload.state["orgs.csv"] == first.state["orgs.csv"]
    assert "classes.csv: absent (5 stored row(s) kept)" in upload.notes


def test_a_rejected_row_leaves_its_record_as_it_was(example: Package) -> None:
    first = run(example)
    pkg = example.copy()
    break_row(pkg, "users.csv", {"identifier": "20030"}, grades="UG", givenName="Changed")
    upload = run(pkg, first.state)
    diff = reimport(published(first, STUDENTS), upload, STUDENTS)
    assert diff.changes == []  # not updated with the rejected row, not deactivated either
    assert upload.state["users.csv"][student_sid(pkg, "20030")]["givenName"] == "Umber"


def test_a_stored_row_that_can_no_longer_be_mapped_is_kept_and_reported(example: Package) -> None:
    first = run(example)
    cedar = example.find("orgs.csv", name="Cedar Middle School")["sourcedId"]
    delta = as_delta(example, {"orgs.csv": [{"sourcedId": cedar, "status": "tobedeleted"}]})
    upload = run(delta, first.state)
    stored = [e for e in upload.errors if e.line == 0 and e.file == "users.csv"]
    assert stored
    assert all("(row stored from an earlier upload)" in e.reason for e in stored)
    assert upload.rejected[STUDENTS] == 12
    assert upload.rejected[USERS] == 2
    for kind in (USERS, STUDENTS, LINKS):
        diff = reimport(published(first, kind), upload, kind)
        assert diff.deactivated == 0, kind


# --- manifest ---------------------------------------------------------------------------------


def test_the_manifest_must_be_oneroster_1_1(example: Package) -> None:
    pkg = example.copy()
    pkg.raw["manifest.csv"] = pkg.manifest().replace(
        b"oneroster.version,1.1", b"oneroster.version,1.2"
    )
    manifest = parse_manifest(pkg.files()["manifest.csv"])
    assert not manifest.usable
    assert manifest.errors[0].reason == "must be 1.1 (only OneRoster 1.1 is read)"
    assert not parse_manifest(None).usable
    assert not parse_manifest(b"property,value\nmanifest.version,1.0\n").usable


def test_manifest_modes_and_files_that_contradict_it(example: Package) -> None:
    pkg = example.copy()
    text = pkg.manifest().replace(b"file.demographics,bulk", b"file.demographics,absent")
    text = text.replace(b"file.courses,bulk", b"file.courses,sometimes")
    pkg.raw["manifest.csv"] = text.replace(b"file.results,absent\r\n", b"")
    pkg.raw["demographics.csv"] = pkg.file_bytes("demographics.csv")
    files = pkg.files()
    files["demographics.csv"] = pkg.file_bytes("demographics.csv")
    manifest = parse_manifest(files["manifest.csv"])
    upload = build_upload(D, manifest, files, frozenset(files), empty_state(), today=TODAY)
    errors = where(upload)
    assert errors[("demographics.csv", 0, "")].startswith(
        "in the package but manifest.csv says absent"
    )
    assert (
        errors[("manifest.csv", 8, "file.courses")]
        == "must be absent, bulk or delta; the file is not read"
    )
    assert errors[("manifest.csv", 0, "file.results")] == "missing property; the file is not read"
    assert upload.fields[STUDENTS]  # the rest imports; classes were not checked against courses


# --- state ------------------------------------------------------------------------------------


def test_state_buckets_round_trip_and_split_a_large_file() -> None:
    state = empty_state()
    state["users.csv"] = {f"u{n}": {"role": "student", "identifier": str(n)} for n in range(2600)}
    docs = bucket_records(D, state)
    users = [d for d in docs.values() if d["file"] == "users.csv"]
    assert len(users) == 8
    assert all(d["buckets"] == 8 for d in users)
    assert all(key.startswith(f"{D}|users.csv|") for key, d in docs.items() if d in users)
    decoded, bad = decode_state(docs)
    assert (decoded, bad) == (state, [])
    assert decode_state({"x": {"file": "nope.csv", "rows": {}}})[1] == ["x"]
