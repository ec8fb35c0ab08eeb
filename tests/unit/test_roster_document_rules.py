"""The upload document's rules exactly as it states them (review of issue #14): staff ids,
optional columns, type A names, codes, single-file uploads, the error report, the caps."""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path

import pytest

from abacus.errors import RosterInputError
from abacus.roster.report import error_report_csv, format_error_table
from abacus.roster.validation import (
    LINKS_FILE,
    STUDENTS_FILE,
    USERS_FILE,
    PublishedIds,
    RowError,
    read_roster_dir,
    validate_roster,
)
from abacus.settings import AbacusSettings

TODAY = date(2025, 10, 1)
USERS_HEADER = "Employee_ID,Username,Email,Password,First_Name,Building_Names,User_Type"
USERS = USERS_HEADER + "\n0101,tgreen,tgreen@example.org,,Terry,North School,1\n"
STUDENTS_HEADER = (
    "StudentID,Date_of_Birth,Last,First,Grade,Building_Name,Gender,SPED,Ethnicity,Race,ELL"
)
GOOD_STUDENT = "5001,01/06/2016,Brightwater,Ottoline,3,North School,F,N,Hispanic/Latino,Asian,Y"
STUDENTS = f"{STUDENTS_HEADER}\n{GOOD_STUDENT}\n"
LINKS = "EmployeeID,StudentID\n0101,5001\n"


def roster(users: str = USERS, students: str = STUDENTS, links: str = LINKS) -> dict[str, bytes]:
    return {
        USERS_FILE: users.encode(),
        STUDENTS_FILE: students.encode(),
        LINKS_FILE: links.encode(),
    }


def csv_line(*cells: str) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(cells)
    return out.getvalue()


def report_rows(errors: list[RowError]) -> list[list[str]]:
    return list(csv.reader(io.StringIO(error_report_csv(errors), newline="")))[1:]


# --- Employee_ID / EmployeeID: A/N, "0-9, A-Z, including 7-bit ASCII characters" -----------------


@pytest.mark.parametrize(
    "staff_id", ["T-100", "t.100", "Ann B", "O'Neil#7", 'say "hi", ok', "a|b", "~!@$%^&*()_+={}[]"]
)
def test_staff_ids_take_any_printable_7bit_ascii_character(staff_id: str) -> None:
    users = USERS_HEADER + "\n" + csv_line(staff_id, "tgreen", "", "", "Terry", "North School", "1")
    links = "EmployeeID,StudentID\n" + csv_line(staff_id, "5001")
    result = validate_roster(roster(users=users, links=links), today=TODAY)
    assert result.errors == []
    assert [u.employee_id for u in result.users] == [staff_id]
    assert [(link.employee_id, link.student_id) for link in result.links] == [(staff_id, "5001")]


@pytest.mark.parametrize(
    ("staff_id", "reason"),
    [("T\u00e9100", "not 7-bit ASCII"), ("T\x07100", "contains control characters")],
)
def test_staff_ids_outside_printable_7bit_ascii_are_rejected(staff_id: str, reason: str) -> None:
    users = USERS + csv_line("0102", "tg2", "", "", "Ann", "North School", "1")
    links = LINKS + csv_line(staff_id, "5001")
    users += csv_line(staff_id, "tg3", "", "", "Cy", "North School", "1")
    result = validate_roster(roster(users=users, links=links), today=TODAY)
    assert [(e.file, e.line, e.column, e.reason) for e in result.errors] == [
        (USERS_FILE, 4, "Employee_ID", reason),
        (LINKS_FILE, 3, "EmployeeID", reason),
    ]
    assert [u.employee_id for u in result.users] == ["0101", "0102"]


def test_student_ids_stay_letters_and_digits() -> None:
    students = STUDENTS + GOOD_STUDENT.replace("5001", "S-2") + "\n"
    result = validate_roster(roster(students=students), today=TODAY)
    assert [(e.file, e.line, e.column) for e in result.errors] == [(STUDENTS_FILE, 3, "StudentID")]
    assert result.errors[0].reason == "must be letters and digits only (0-9, A-Z)"


# --- Email and Password: optional values, so optional columns ------------------------------------


def test_a_users_file_without_email_and_password_columns_imports_every_row() -> None:
    users = "Employee_ID,Username,First_Name,Building_Names,User_Type\n"
    users += "0101,tgreen,Terry,North School,1\n"
    result = validate_roster(roster(users=users), today=TODAY)
    assert result.errors == []
    (user,) = result.users
    assert (user.employee_id, user.email) == ("0101", None)
    assert [s.student_id for s in result.students] == ["5001"]
    assert [(link.employee_id, link.student_id) for link in result.links] == [("0101", "5001")]
    assert result.usable == {USERS_FILE: True, STUDENTS_FILE: True, LINKS_FILE: True}


# --- names are type A (no digits): imported, with a warning --------------------------------------


def test_names_with_digits_import_with_a_warning_each() -> None:
    users = USERS.replace(",Terry,", ",Terry2,")
    students = STUDENTS.replace("Brightwater,Ottoline", "Br1ghtwater,Ottoline")
    users_with_last = users.replace("First_Name,", "First_Name,Last_Name,").replace(
        "Terry2,", "Terry2,Gr33n,"
    )
    result = validate_roster(roster(users=users_with_last, students=students), today=TODAY)
    assert result.errors == []
    assert [u.first_name for u in result.users] == ["Terry2"]
    assert [s.last_name for s in result.students] == ["Br1ghtwater"]
    reason = "warning: contains digits (a name is type A: no numeric characters); imported as is"
    assert [(w.file, w.line, w.column, w.value, w.reason) for w in result.warnings] == [
        (USERS_FILE, 2, "First_Name", "T***", reason),
        (USERS_FILE, 2, "Last_Name", "G***", reason),
        (STUDENTS_FILE, 2, "Last", "B***", reason),
    ]
    assert all(w.warning for w in result.warnings)


def test_codes_are_matched_without_regard_to_case() -> None:
    row = "5001,01/06/2016,Brightwater,Ottoline,kg,North School,f,y,hispanic/latino,asian,n"
    result = validate_roster(roster(students=f"{STUDENTS_HEADER}\n{row}\n"), today=TODAY)
    assert result.errors == []
    (student,) = result.students
    assert (student.grade, student.gender, student.is_iep, student.is_ell) == (
        "K",
        "F",
        True,
        False,
    )
    assert (student.ethnicity, student.race) == ("Hispanic/Latino", "Asian")


# --- each file on its own ----------------------------------------------------------------------


PUBLISHED = PublishedIds(
    staff={"0101": True, "0102": False},
    students={"5001": True, "5002": False},
    buildings=frozenset({"North School"}),
)


NO_USERS, NO_STUDENTS = "1_users.csv not uploaded", "2_students.csv not uploaded"


def test_links_alone_are_checked_against_the_published_staff_and_students() -> None:
    links = "EmployeeID,StudentID\n0101,5001\n0102,5001\n0101,5002\n0199,5001\n101,5001\n"
    result = validate_roster({LINKS_FILE: links.encode()}, today=TODAY, published=PUBLISHED)
    assert [(link.employee_id, link.student_id) for link in result.links] == [("0101", "5001")]
    assert [(e.line, e.column, e.value, e.reason) for e in result.errors] == [
        (3, "EmployeeID", "0102", "deactivated on the published roster (1_users.csv not uploaded)"),
        (
            4,
            "StudentID",
            "5002",
            "deactivated on the published roster (2_students.csv not uploaded)",
        ),
        (5, "EmployeeID", "0199", "not on the published roster (1_users.csv not uploaded)"),
        (6, "EmployeeID", "101", "leading zeros differ from the published roster (0101)"),
    ]
    assert result.uploaded == {LINKS_FILE}
    assert result.usable[LINKS_FILE] is True


def test_students_alone_name_buildings_of_the_published_staff() -> None:
    students = STUDENTS + GOOD_STUDENT.replace("5001", "5003").replace("North", "South") + "\n"
    result = validate_roster({STUDENTS_FILE: students.encode()}, today=TODAY, published=PUBLISHED)
    assert [s.student_id for s in result.students] == ["5001"]
    assert [(e.line, e.column, e.reason) for e in result.errors] == [
        (3, "Building_Name", "not a building of the published staff (1_users.csv not uploaded)")
    ]
    assert result.uploaded == {STUDENTS_FILE}


def test_users_and_links_check_students_against_the_published_ones() -> None:
    files = roster()
    del files[STUDENTS_FILE]
    result = validate_roster(files, today=TODAY, published=PUBLISHED)
    assert result.errors == []
    assert [(link.employee_id, link.student_id) for link in result.links] == [("0101", "5001")]
    assert result.uploaded == {USERS_FILE, LINKS_FILE}


def test_without_the_published_roster_a_missing_file_is_still_an_error() -> None:
    result = validate_roster({USERS_FILE: USERS.encode()}, today=TODAY)
    assert [(e.file, e.line, e.reason) for e in result.errors] == [
        (STUDENTS_FILE, 0, "file is missing"),
        (LINKS_FILE, 0, "file is missing"),
    ]


# --- roster_errors.csv: masked, no clear text after a broken quote, no formulas -------------------


def test_username_and_district_data_are_masked() -> None:
    users = USERS + "0102,t green,,,Ann,North School,1\n0103,TGreen,,,Cy,North School,1\n"
    students = f"{STUDENTS_HEADER},District_Data_1,District_Data_5\n"
    students += f"{GOOD_STUDENT},zp\x01ud,MV\x02001\n"
    errors = validate_roster(roster(users=users, students=students), today=TODAY).errors
    assert [(e.line, e.column, e.value) for e in errors] == [
        (3, "Username", "t***"),
        (4, "Username", "T***"),
        (2, "District_Data_1", "z***"),
        (2, "District_Data_5", "M***"),
        (2, "StudentID", "5001"),  # the link to that student
    ]
    text = format_error_table(errors) + error_report_csv(errors)
    for secret in ("t green", "TGreen", "zp", "MV"):
        assert secret not in text


@pytest.mark.parametrize("quoted", ["Employee_ID", "Username", "Building_Names"])
def test_an_unterminated_quote_shows_nothing_of_the_rest_of_the_line(quoted: str) -> None:
    cells = ["0102", "tg2", "ann@example.org", "Secret-Pass-9", "Ann", "North School", "1"]
    index = USERS_HEADER.split(",").index(quoted)
    cells[index] = '"' + cells[index]
    users = USERS + ",".join(cells) + "\n0103,tg3,cy@example.org,Other-Pass,Cy,North School,1\n"
    result = validate_roster(roster(users=users), today=TODAY)
    user_errors = [e for e in result.errors if e.file == USERS_FILE]
    assert [(e.line, e.column, e.value) for e in user_errors] == [(3, quoted, "***")]
    assert user_errors[0].reason == (
        "a quoted value runs from line 3 to the end of the file (unterminated quote?):"
        " lines 3-4 are not imported"
    )
    text = format_error_table(result.errors) + error_report_csv(result.errors)
    for secret in ("ann@example.org", "Secret-Pass-9", "cy@example.org", "Other-Pass", "tg3"):
        assert secret not in text
    assert [u.employee_id for u in result.users] == ["0101"]


def test_a_quote_closed_on_a_later_line_names_every_line_it_swallowed() -> None:
    users = (
        USERS + '0102,"tg2,a@example.org,Pw-1,Ann,North School,1\n0103,tg3,,,Cy,North School,1\n'
    )
    users += '0104,"tg4",,,Di,North School,1\n0105,tg5,,,Ed,North School,1\n'
    result = validate_roster(roster(users=users), today=TODAY)
    assert [(e.line, e.column, e.value, e.reason) for e in result.errors] == [
        (
            3,
            "Username",
            "***",
            "a quoted value runs over lines 3-5 (unterminated quote?): lines 3-5 are not imported",
        )
    ]
    assert [u.employee_id for u in result.users] == ["0101", "0105"]


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1+2", "'+1+2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("-5", "-5"),
        ("13", "13"),
    ],
)
def test_formula_cells_are_neutralised_in_the_report(value: str, shown: str) -> None:
    row = GOOD_STUDENT.replace(",3,", f",{csv_line(value).strip()},")
    errors = validate_roster(roster(students=f"{STUDENTS_HEADER}\n{row}\n"), today=TODAY).errors
    assert [(e.column, e.value) for e in errors if e.file == STUDENTS_FILE] == [("Grade", value)]
    (cells,) = [r for r in report_rows(errors) if r[0] == STUDENTS_FILE]
    assert cells[3] == shown


# --- caps --------------------------------------------------------------------------------------


def test_a_file_over_the_byte_cap_is_refused_before_it_is_read(tmp_path: Path) -> None:
    for name, text in ((USERS_FILE, USERS), (STUDENTS_FILE, STUDENTS), (LINKS_FILE, LINKS)):
        (tmp_path / name).write_text(text)
    size = (tmp_path / STUDENTS_FILE).stat().st_size
    assert read_roster_dir(tmp_path, max_bytes=size)[STUDENTS_FILE] == STUDENTS.encode()
    with pytest.raises(RosterInputError) as info:
        read_roster_dir(tmp_path, max_bytes=size - 1)
    assert str(info.value) == (
        f"{STUDENTS_FILE}: {size:,} bytes, over the limit of {size - 1:,}"
        " (ABACUS_ROSTER__MAX_FILE_BYTES); nothing imported"
    )


def test_a_file_over_the_row_cap_is_refused() -> None:
    students = STUDENTS + "".join(
        GOOD_STUDENT.replace("5001", str(5002 + n)) + "\n" for n in range(2)
    )
    assert len(validate_roster(roster(students=students), today=TODAY, max_rows=3).students) == 3
    with pytest.raises(RosterInputError) as info:
        validate_roster(roster(students=students), today=TODAY, max_rows=2)
    assert str(info.value) == (
        f"{STUDENTS_FILE}: more than 2 rows (ABACUS_ROSTER__MAX_ROWS); nothing imported"
    )


def test_the_caps_default_far_above_a_million_student_district(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caps = AbacusSettings(home=Path("/x")).roster
    # A 1M-student district: its largest file is a OneRoster enrollments.csv, ~10 classes a
    # student at ~110 bytes a row (the benchmark's rows): ~10M rows, ~1.1 GB.
    assert caps.max_rows >= 2 * 10_000_000
    assert caps.max_file_bytes >= 1.8 * 10_000_000 * 110
    monkeypatch.setenv("ABACUS_ROSTER__MAX_ROWS", "39")
    monkeypatch.setenv("ABACUS_ROSTER__MAX_FILE_BYTES", "4096")
    caps = AbacusSettings(home=Path("/x")).roster
    assert (caps.max_rows, caps.max_file_bytes) == (39, 4096)
    monkeypatch.setenv("ABACUS_ROSTER__MAX_ROWS", "0")
    with pytest.raises(ValueError, match="max_rows"):
        AbacusSettings(home=Path("/x"))
