"""Unit tests for roster upload validation and the error report."""

from __future__ import annotations

import csv
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from abacus.roster.report import error_report_csv, format_error_table, write_error_report
from abacus.roster.validation import (
    RowError,
    UserType,
    mask,
    normalize_grade,
    read_roster_dir,
    validate_roster,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TODAY = date(2025, 10, 1)

USERS_HEADER = "Employee_ID,Username,Email,Password,First_Name,Building_Names,User_Type"
USERS = USERS_HEADER + "\n0101,tgreen,tgreen@example.org,,Terry,North School,1\n"
STUDENTS_HEADER = (
    "StudentID,Date_of_Birth,Last,First,Grade,Building_Name,Gender,SPED,Ethnicity,Race,ELL"
)
GOOD_STUDENT = "5001,01/06/2016,Brightwater,Ottoline,3,North School,F,N,Hispanic/Latino,Asian,Y"
LINKS = "EmployeeID,StudentID\n0101,5001\n"


def roster(
    users: str = USERS,
    students: str = STUDENTS_HEADER + "\n" + GOOD_STUDENT + "\n",
    links: str = LINKS,
) -> dict[str, bytes]:
    return {
        "1_users.csv": users.encode(),
        "2_students.csv": students.encode(),
        "3_teacher_students.csv": links.encode(),
    }


def student_errors(row: str) -> list[RowError]:
    result = validate_roster(roster(students=f"{STUDENTS_HEADER}\n{row}\n", links=""), today=TODAY)
    return [e for e in result.errors if e.file != "3_teacher_students.csv"]


# --- the example districts --------------------------------------------------------------------


def test_clean_example_validates_with_expected_counts() -> None:
    result = validate_roster(read_roster_dir(EXAMPLES / "district"), today=TODAY)
    assert result.errors == []
    assert result.ok
    assert len(result.users) == 8
    assert len(result.students) == 40
    assert len(result.links) == 50
    assert result.buildings == {"Oak Elementary", "Cedar Middle School"}
    assert Counter(u.user_type for u in result.users) == {
        UserType.TEACHER: 5,
        UserType.BUILDING: 1,
        UserType.DISTRICT: 1,
        UserType.ADMIN: 1,
    }
    assert Counter(s.grade for s in result.students) == {
        g: 4 for g in ("PK", "K", "1", "2", "3", "4", "5", "6", "7", "8")
    }
    assert Counter(s.building for s in result.students) == {
        "Oak Elementary": 28,
        "Cedar Middle School": 12,
    }
    linked = Counter(link.student_id for link in result.links)
    assert set(linked) == {s.student_id for s in result.students}
    assert set(linked.values()) == {1, 2}


def test_clean_example_field_values() -> None:
    result = validate_roster(read_roster_dir(EXAMPLES / "district"), today=TODAY)
    students = {s.student_id: s for s in result.students}
    first = students["20001"]
    assert (first.first_name, first.last_name) == ("Zephyr", "Puddleworth")
    assert first.date_of_birth == date(2021, 1, 1)
    assert first.grade == "PK"
    assert first.building == "Oak Elementary"
    assert (first.gender, first.is_iep, first.is_ell) == ("M", False, False)
    assert (first.ethnicity, first.race) == ("Hispanic/Latino", "White")
    assert first.district_data == {"District_Data_1": "zpuddleworth", "District_Data_2": "MV20001"}
    assert first.line == 2
    assert students["20006"].grade == "K"  # written "KG"
    assert students["20011"].grade == "1"  # written "01"
    assert students["20004"].is_iep is True
    assert students["20003"].is_ell is True
    users = {u.employee_id: u for u in result.users}
    assert users["0301"].buildings == ("Oak Elementary", "Cedar Middle School")
    assert users["0501"].user_type is UserType.ADMIN
    assert users["0501"].buildings == ()
    assert users["0501"].display_name == "Avery Quill"
    password = users["0501"].password
    assert password is not None
    assert password.get_secret_value() == "Example-Only-1"
    assert "Example-Only-1" not in repr(users["0501"])
    assert "Example-Only-1" not in str(users["0501"])


BAD_ROSTER_ERRORS = [
    ("2_students.csv", 5, "Date_of_Birth", "0***", "not a real calendar date"),
    ("2_students.csv", 9, "Grade", "13", "grade must be PK, K/KG or 1-12"),
    ("2_students.csv", 13, "Gender", "X", "must be F or M"),
    ("2_students.csv", 17, "Race", "Martian", "not an allowed Race value"),
    (
        "2_students.csv",
        21,
        "Building_Name",
        "oak elementary",
        "not a building named in 1_users.csv (case differs from 'Oak Elementary')",
    ),
    ("2_students.csv", 25, "StudentID", "2\u00d6106", "not 7-bit ASCII"),
    ("2_students.csv", 28, "StudentID", "20003", "duplicate StudentID (first at line 4)"),
    ("3_teacher_students.csv", 7, "StudentID", "29999", "not found in 2_students.csv"),
    (
        "3_teacher_students.csv",
        14,
        "EmployeeID",
        "102",
        "leading zeros differ from 1_users.csv (0102)",
    ),
    (
        "3_teacher_students.csv",
        19,
        "StudentID",
        "20101",
        "refers to a rejected row in 2_students.csv (line 5)",
    ),
]


def test_bad_roster_reports_each_error_class() -> None:
    result = validate_roster(read_roster_dir(EXAMPLES / "bad_roster"), today=TODAY)
    got = [(e.file, e.line, e.column, e.value, e.reason) for e in result.errors]
    assert got == BAD_ROSTER_ERRORS
    assert not result.ok


def test_bad_roster_keeps_the_valid_rows() -> None:
    result = validate_roster(read_roster_dir(EXAMPLES / "bad_roster"), today=TODAY)
    assert len(result.users) == 8
    assert len(result.students) == 20
    assert {s.student_id for s in result.students} == {str(n) for n in range(20001, 20021)}
    assert [s.line for s in result.students if s.student_id == "20003"] == [4]
    assert len(result.links) == 25
    assert {"20101", "29999"}.isdisjoint(link.student_id for link in result.links)
    assert all(link.employee_id != "102" for link in result.links)


# --- reading tolerance ------------------------------------------------------------------------


def test_bom_crlf_quotes_and_spaces_are_tolerated() -> None:
    users = (
        "\ufeffEmployee_ID , Username,Email,Password,First_Name,Last_Name,"
        "Building_Names,User_Type\r\n"
        ' 0101 , tgreen ,"tgreen@example.org", , "Terry" ,"Green, Jr." ,'
        ' "North School; South School" , 1 \r\n'
        "\r\n"
    )
    students = (
        "\ufeff" + STUDENTS_HEADER + ",District_Data_1\r\n"
        ' 5001 ,"01/06/2016", "Brightwater" ,Ottoline, 03 ,"South School",f,y,'
        '"not hispanic/latino", "Two or More Races" ,n, "ob,1"\r\n'
    )
    result = validate_roster(
        {
            "1_users.csv": users.encode("utf-8"),
            "2_students.csv": students.encode("utf-8"),
            "3_teacher_students.csv": b"\xef\xbb\xbfEmployeeID,StudentID\r\n0101 , 5001\r\n",
        },
        today=TODAY,
    )
    assert result.errors == []
    (user,) = result.users
    assert (user.employee_id, user.username, user.email) == ("0101", "tgreen", "tgreen@example.org")
    assert user.display_name == "Terry Green, Jr."
    assert user.buildings == ("North School", "South School")
    assert user.password is None
    (student,) = result.students
    assert student.grade == "3"
    assert (student.gender, student.is_iep, student.is_ell) == ("F", True, False)
    assert student.ethnicity == "Not Hispanic/Latino"
    assert student.district_data == {"District_Data_1": "ob,1"}
    assert [(link.employee_id, link.student_id) for link in result.links] == [("0101", "5001")]


def test_line_numbers_are_physical_lines() -> None:
    students = (
        f"{STUDENTS_HEADER},District_Data_1\n"
        f'{GOOD_STUDENT},"a note\nover two lines"\n'
        "\n"
        "5002,01/06/2016,Brightwater,Otto,3,North School,F,N,Hispanic/Latino,Asian,Q,\n"
    )
    result = validate_roster(roster(students=students, links="EmployeeID,StudentID\n"), today=TODAY)
    assert [(e.line, e.column, e.reason) for e in result.errors] == [
        (
            2,
            "District_Data_1",
            "a quoted value runs over lines 2-3 (unterminated quote?): lines 2-3 are not imported",
        ),
        (5, "ELL", "must be Y or N"),
    ]


def test_missing_files_and_headers_are_file_level_errors() -> None:
    result = validate_roster({"1_users.csv": USERS.encode()}, today=TODAY)
    assert [(e.file, e.line, e.reason) for e in result.errors] == [
        ("2_students.csv", 0, "file is missing"),
        ("3_teacher_students.csv", 0, "file is missing"),
    ]
    students = STUDENTS_HEADER.replace(",Race", "") + "\n" + GOOD_STUDENT + "\n"
    result = validate_roster(roster(students=students), today=TODAY)
    assert result.errors[0] == RowError("2_students.csv", 1, "Race", "", "missing required column")
    assert result.students == []
    assert result.errors[1:] == [
        RowError(
            "3_teacher_students.csv",
            2,
            "StudentID",
            "5001",
            "cannot be checked: 2_students.csv was rejected",
        )
    ]


def test_users_file_rejected_means_buildings_cannot_be_checked() -> None:
    result = validate_roster(roster(users="Employee_ID,Username\n1,a\n"), today=TODAY)
    reasons = {(e.file, e.column): e.reason for e in result.errors}
    assert reasons[("2_students.csv", "Building_Name")] == (
        "cannot be checked: 1_users.csv was rejected"
    )
    assert reasons[("3_teacher_students.csv", "EmployeeID")] == (
        "cannot be checked: 1_users.csv was rejected"
    )


def test_invalid_utf8_is_reported_on_its_row() -> None:
    students = f"{STUDENTS_HEADER}\n{GOOD_STUDENT}\n".encode().replace(b"Ottoline", b"Ott\xe9line")
    result = validate_roster({**roster(), "2_students.csv": students}, today=TODAY)
    assert [(e.file, e.line, e.column, e.value, e.reason) for e in result.errors[:1]] == [
        ("2_students.csv", 2, "First", "O***", "not valid UTF-8")
    ]


def test_too_many_fields_is_a_row_error() -> None:
    errors = student_errors(GOOD_STUDENT + ",extra,values,,,,,,")
    assert [(e.line, e.column, e.reason) for e in errors] == [
        (2, "", "row has 19 fields but the header has 11")
    ]
    assert student_errors(GOOD_STUDENT + ",,,") == []


# --- field rules --------------------------------------------------------------------------------


def _bad(field: str, value: str) -> str:
    index = STUDENTS_HEADER.split(",").index(field)
    cells = GOOD_STUDENT.split(",")
    cells[index] = value
    return ",".join(cells)


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("StudentID", "50-01", "must be letters and digits only (0-9, A-Z)"),
        ("StudentID", "50 01", "must be letters and digits only (0-9, A-Z)"),
        ("StudentID", "\uff15\uff10\uff10\uff11", "not 7-bit ASCII"),
        ("Date_of_Birth", "1/6/2016", "must be mm/dd/yyyy with slashes"),
        ("Date_of_Birth", "01-06-2016", "must be mm/dd/yyyy with slashes"),
        ("Date_of_Birth", "2016/01/06", "must be mm/dd/yyyy with slashes"),
        ("Date_of_Birth", "13/01/2016", "not a real calendar date"),
        ("Date_of_Birth", "02/29/2015", "not a real calendar date"),
        ("Date_of_Birth", "10/02/2025", "date is in the future"),
        ("Date_of_Birth", "01/01/1899", "date is before 1900"),
        ("Grade", "13", "grade must be PK, K/KG or 1-12"),
        ("Grade", "0", "grade must be PK, K/KG or 1-12"),
        ("Grade", "Pre-K", "grade must be PK, K/KG or 1-12"),
        ("Gender", "X", "must be F or M"),
        ("SPED", "yes", "must be Y or N"),
        ("ELL", "1", "must be Y or N"),
        ("Ethnicity", "Latino", "not an allowed Ethnicity value"),
        ("Race", "Caucasian", "not an allowed Race value"),
        ("Building_Name", "Nowhere High", "not a building named in 1_users.csv"),
        ("Building_Name", "north school", "not a building named in 1_users.csv (case differs"),
        ("Last", "", "required value is blank"),
        ("Gender", "", "required value is blank"),
    ],
)
def test_student_field_rules(column: str, value: str, reason: str) -> None:
    errors = student_errors(_bad(column, value))
    assert len(errors) == 1
    assert (errors[0].line, errors[0].column) == (2, column)
    assert errors[0].reason.startswith(reason)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("K", "K"), ("KG", "K"), ("kg", "K"), ("PK", "PK"), ("01", "1"), ("9", "9"), ("12", "12")],
)
def test_normalize_grade(raw: str, expected: str) -> None:
    assert normalize_grade(raw) == expected


def test_student_with_several_bad_fields_reports_each_and_is_dropped() -> None:
    bad = _bad("Grade", "14").replace("F,N", "Z,N").replace("5001", "5002")
    rows = f"{GOOD_STUDENT}\n{bad}\n"
    rows += GOOD_STUDENT.replace("5001", "5003") + "\n"
    result = validate_roster(
        roster(students=STUDENTS_HEADER + "\n" + rows, links=LINKS + "0101,5003\n"), today=TODAY
    )
    assert [(e.line, e.column) for e in result.errors] == [(3, "Grade"), (3, "Gender")]
    assert [s.student_id for s in result.students] == ["5001", "5003"]
    assert len(result.links) == 2


def test_student_password_is_checked_and_not_kept() -> None:
    result = validate_roster(
        roster(students=f"{STUDENTS_HEADER},Password\n{GOOD_STUDENT},Secret99\n"), today=TODAY
    )
    (student,) = result.students
    assert "Secret99" not in repr(student)
    assert not hasattr(student, "password")
    bad = validate_roster(
        roster(students=f"{STUDENTS_HEADER},Password\n{GOOD_STUDENT},S\u00e9cret\n"), today=TODAY
    )
    assert [(e.column, e.value, e.reason) for e in bad.errors if e.column == "Password"] == [
        ("Password", "***", "not 7-bit ASCII")
    ]


@pytest.mark.parametrize(
    ("row", "column", "reason"),
    [
        ("0102,tg2,,,Ann,North School,5", "User_Type", "must be 1 (teacher)"),
        ("0102,tg2,,,Ann,North School,", "User_Type", "required value is blank"),
        ("01\u00e902,tg2,,,Ann,North School,1", "Employee_ID", "not 7-bit ASCII"),
        ("0102,t g2,,,Ann,North School,1", "Username", "must not contain spaces"),
        ("0102,tg2,not-an-email,,Ann,North School,1", "Email", "not an email address"),
        ("0102,tg2,,,Ann,North School;;South,2", "Building_Names", "empty building name"),
        ("0102,tg2,,,Ann,,1", "Building_Names", "required for User_Type 1 and 2"),
        ("0102,tg2,,,,North School,1", "First_Name", "required value is blank"),
        ("0101,tg2,,,Ann,North School,1", "Employee_ID", "duplicate Employee_ID (first at line 2)"),
        ("0102,TGreen,,,Ann,North School,1", "Username", "duplicate Username (first at line 2)"),
    ],
)
def test_user_field_rules(row: str, column: str, reason: str) -> None:
    result = validate_roster(roster(users=USERS + row + "\n"), today=TODAY)
    assert [(e.file, e.line, e.column) for e in result.errors] == [("1_users.csv", 3, column)]
    assert result.errors[0].reason.startswith(reason)
    assert [u.employee_id for u in result.users] == ["0101"]


def test_district_and_admin_users_need_no_building() -> None:
    users = USERS + "0300,dist,,,Dee,,3\n0400,adm,,,Ada,,4\n"
    result = validate_roster(roster(users=users), today=TODAY)
    assert result.errors == []
    assert [(u.user_type, u.buildings) for u in result.users[1:]] == [
        (UserType.DISTRICT, ()),
        (UserType.ADMIN, ()),
    ]


def test_last_name_column_is_optional() -> None:
    result = validate_roster(roster(), today=TODAY)
    assert result.errors == []
    assert result.users[0].last_name is None
    assert result.users[0].display_name == "Terry"


# --- links ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "column", "reason"),
    [
        ("0199,5001", "EmployeeID", "not found in 1_users.csv"),
        ("101,5001", "EmployeeID", "leading zeros differ from 1_users.csv (0101)"),
        ("0101,05001", "StudentID", "leading zeros differ from 2_students.csv (5001)"),
        ("0101,5001", "", "duplicate link (first at line 2)"),
        ("0101,50_01", "StudentID", "must be letters and digits only"),
        ("0101,", "StudentID", "required value is blank"),
    ],
)
def test_link_rules(row: str, column: str, reason: str) -> None:
    result = validate_roster(roster(links=LINKS + row + "\n"), today=TODAY)
    assert [(e.file, e.line, e.column) for e in result.errors] == [
        ("3_teacher_students.csv", 3, column)
    ]
    assert result.errors[0].reason.startswith(reason)
    assert len(result.links) == 1


def test_link_to_rejected_user_is_reported() -> None:
    users = USERS + "0102,tg2,,,Ann,North School,9\n"
    result = validate_roster(roster(users=users, links=LINKS + "0102,5001\n"), today=TODAY)
    assert [(e.file, e.line, e.column) for e in result.errors] == [
        ("1_users.csv", 3, "User_Type"),
        ("3_teacher_students.csv", 3, "EmployeeID"),
    ]
    assert result.errors[1].reason == "refers to a rejected row in 1_users.csv (line 3)"


# --- masking and reports --------------------------------------------------------------------------


def test_masked_values_hide_personal_data() -> None:
    row = "5001,12/25/2030,Brightwaterø,Ottolineø,3,North School,F,N,Hispanic/Latino,Asian,Y"
    errors = student_errors(row)
    assert {(e.column, e.value) for e in errors} == {
        ("Date_of_Birth", "1***"),
        ("Last", "B***"),
        ("First", "O***"),
    }
    text = format_error_table(errors) + error_report_csv(errors)
    for secret in ("12/25/2030", "Brightwater", "Ottoline"):
        assert secret not in text
    users = USERS + "0102,tg2,ann@@example,pässword,Änn,North School,1\n"
    errors = validate_roster(roster(users=users), today=TODAY).errors
    assert {(e.column, e.value) for e in errors} == {
        ("Email", "a***"),
        ("Password", "***"),
        ("First_Name", "\u00c4***"),
    }
    assert mask("") == ""
    assert mask("Zed") == "Z***"
    assert mask("hunter2", secret=True) == "***"


def test_write_error_report_round_trips(tmp_path: Path) -> None:
    errors = [
        RowError("2_students.csv", 5, "Grade", "13", "grade must be PK, K/KG or 1-12"),
        RowError("3_teacher_students.csv", 7, "", "0101,5001", "duplicate link (first at line 2)"),
    ]
    path = write_error_report(errors, tmp_path / "out" / "roster_errors.csv")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows == [
        ["file", "line", "column", "value", "reason"],
        ["2_students.csv", "5", "Grade", "13", "grade must be PK, K/KG or 1-12"],
        ["3_teacher_students.csv", "7", "", "0101,5001", "duplicate link (first at line 2)"],
    ]


def test_format_error_table() -> None:
    errors = [
        RowError("2_students.csv", 5, "Grade", "13", "grade must be PK, K/KG or 1-12"),
        RowError("2_students.csv", 12, "Gender", "X\tY", "must be F or M"),
    ]
    assert format_error_table(errors).splitlines() == [
        "file            line  column  value  reason",
        "--------------  ----  ------  -----  ------------------------------",
        "2_students.csv  5     Grade   13     grade must be PK, K/KG or 1-12",
        "2_students.csv  12    Gender  X\\tY   must be F or M",
    ]
    assert format_error_table(errors, limit=1).splitlines()[-1] == "... and 1 more"
    assert format_error_table([]) == "no errors"
