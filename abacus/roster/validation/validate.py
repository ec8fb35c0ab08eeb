"""Validation of the three roster uploads against the upload document's formats (pure).

Each file is checked on its own (`validate_users`, `validate_students`, `validate_links`),
then against the others (buildings named in 1_users.csv, links to valid ids);
`validate_roster` runs them together and is what the importer uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime

from abacus.district import DISTRICT_DATA_COLUMNS
from abacus.roster.validation.fields import LINK_COLUMNS, USER_COLUMNS, student_columns
from abacus.roster.validation.models import (
    LINKS_FILE,
    ROSTER_FILES,
    STUDENTS_FILE,
    USERS_FILE,
    LinksResult,
    RosterValidation,
    RowError,
    Student,
    StudentsResult,
    TeacherStudentLink,
    User,
    UsersResult,
    UserType,
)
from abacus.roster.validation.readers import check_row, lookup, read_table

__all__ = ["validate_links", "validate_roster", "validate_students", "validate_users"]


def _first_seen(seen: dict[str, int], key: str, line: int) -> int | None:
    """Record `key` at `line`; return the earlier line if it was already seen."""
    if key in seen:
        return seen[key]
    seen[key] = line
    return None


# --- the three files ------------------------------------------------------------------------------


def validate_users(name: str, text: str) -> UsersResult:
    """Validate `1_users.csv` text on its own."""
    table = read_table(name, text, USER_COLUMNS)
    users: list[User] = []
    errors = list(table.errors)
    ids: dict[str, int] = {}
    usernames: dict[str, int] = {}
    buildings: dict[str, None] = {}
    for line, fields in table.rows if table.usable else []:
        values, row_errors = check_row(table, line, fields, USER_COLUMNS)
        employee_id = values.get("Employee_ID")
        if isinstance(employee_id, str) and (first := _first_seen(ids, employee_id, line)):
            reason = f"duplicate Employee_ID (first at line {first})"
            row_errors.append(RowError(name, line, "Employee_ID", employee_id, reason))
        username = values.get("Username")
        if isinstance(username, str) and (
            first := _first_seen(usernames, username.casefold(), line)
        ):
            reason = f"duplicate Username (first at line {first})"
            row_errors.append(RowError(name, line, "Username", username, reason))
        names: tuple[str, ...] = values.get("Building_Names", ())  # type: ignore[assignment]
        buildings.update(dict.fromkeys(names))
        user_type = values.get("User_Type")
        if (
            not names
            and user_type in {UserType.TEACHER, UserType.BUILDING}
            and ("Building_Names" not in {e.column for e in row_errors})
        ):
            reason = "required for User_Type 1 and 2"
            row_errors.append(RowError(name, line, "Building_Names", "", reason))
        errors.extend(row_errors)
        if not row_errors:
            users.append(
                User(
                    employee_id=str(employee_id),
                    username=str(username),
                    email=values.get("Email"),  # type: ignore[arg-type]
                    password=values.get("Password"),  # type: ignore[arg-type]
                    first_name=str(values["First_Name"]),
                    last_name=values.get("Last_Name"),  # type: ignore[arg-type]
                    buildings=names,
                    user_type=UserType(values["User_Type"]),  # type: ignore[call-overload]
                    line=line,
                )
            )
    return UsersResult(users, errors, ids, frozenset(buildings), table.usable)


def validate_students(
    name: str, text: str, *, buildings: frozenset[str] | None = None, today: date | None = None
) -> StudentsResult:
    """Validate `2_students.csv`; `buildings` (from 1_users.csv) None means "users rejected"."""
    today = today or datetime.now(UTC).date()
    columns = student_columns(today)
    table = read_table(name, text, columns)
    students: list[Student] = []
    errors = list(table.errors)
    ids: dict[str, int] = {}
    by_fold = {b.casefold(): b for b in buildings or ()}
    for line, fields in table.rows if table.usable else []:
        values, row_errors = check_row(table, line, fields, columns)
        student_id = values.get("StudentID")
        if isinstance(student_id, str) and (first := _first_seen(ids, student_id, line)):
            reason = f"duplicate StudentID (first at line {first})"
            row_errors.append(RowError(name, line, "StudentID", student_id, reason))
        building = values.get("Building_Name")
        if isinstance(building, str) and (buildings is None or building not in buildings):
            if buildings is None:
                reason = f"cannot be checked: {USERS_FILE} was rejected"
            elif (other := by_fold.get(building.casefold())) is not None:
                reason = f"not a building named in {USERS_FILE} (case differs from {other!r})"
            else:
                reason = f"not a building named in {USERS_FILE}"
            row_errors.append(RowError(name, line, "Building_Name", building, reason))
        errors.extend(row_errors)
        if not row_errors:
            students.append(
                Student(
                    student_id=str(student_id),
                    date_of_birth=values["Date_of_Birth"],  # type: ignore[arg-type]
                    last_name=str(values["Last"]),
                    first_name=str(values["First"]),
                    grade=str(values["Grade"]),
                    building=str(building),
                    gender=str(values["Gender"]),
                    is_iep=bool(values["SPED"]),
                    is_ell=bool(values["ELL"]),
                    ethnicity=str(values["Ethnicity"]),
                    race=str(values["Race"]),
                    district_data={c: str(values[c]) for c in DISTRICT_DATA_COLUMNS if c in values},
                    line=line,
                )
            )
    return StudentsResult(students, errors, ids, table.usable)


def _resolve(
    ident: str, valid: set[str], ids: dict[str, int], file: str, usable: bool
) -> str | None:
    """None if `ident` names a valid row of `file`, else why not."""
    if ident in valid:
        return None
    if ident in ids:
        return f"refers to a rejected row in {file} (line {ids[ident]})"
    stripped = ident.lstrip("0")
    for other in ids:
        if other.lstrip("0") == stripped:
            return f"leading zeros differ from {file} ({other})"
    return f"not found in {file}" if usable else f"cannot be checked: {file} was rejected"


def validate_links(
    name: str, text: str, *, users: UsersResult, students: StudentsResult
) -> LinksResult:
    """Validate `3_teacher_students.csv` against the (already validated) users and students."""
    table = read_table(name, text, LINK_COLUMNS)
    links: list[TeacherStudentLink] = []
    errors = list(table.errors)
    valid_users = {u.employee_id for u in users.users}
    valid_students = {s.student_id for s in students.students}
    seen: dict[str, int] = {}
    for line, fields in table.rows if table.usable else []:
        values, row_errors = check_row(table, line, fields, LINK_COLUMNS)
        employee_id, student_id = values.get("EmployeeID"), values.get("StudentID")
        if isinstance(employee_id, str) and (
            reason := _resolve(employee_id, valid_users, users.ids, USERS_FILE, users.usable)
        ):
            row_errors.append(RowError(name, line, "EmployeeID", employee_id, reason))
        if isinstance(student_id, str) and (
            reason := _resolve(
                student_id, valid_students, students.ids, STUDENTS_FILE, students.usable
            )
        ):
            row_errors.append(RowError(name, line, "StudentID", student_id, reason))
        if not row_errors:
            pair = f"{employee_id},{student_id}"
            if first := _first_seen(seen, pair, line):
                row_errors.append(
                    RowError(name, line, "", pair, f"duplicate link (first at line {first})")
                )
            else:
                links.append(TeacherStudentLink(str(employee_id), str(student_id), line))
        errors.extend(row_errors)
    return LinksResult(links, errors, table.usable)


def validate_roster(
    files: Mapping[str, bytes | str], *, today: date | None = None
) -> RosterValidation:
    """Validate the three uploads together (keys are file names; values bytes or text)."""
    missing: dict[str, RowError] = {}
    texts: dict[str, str] = {}
    for wanted in ROSTER_FILES:
        text = lookup(files, wanted)
        if text is None:
            missing[wanted] = RowError(wanted, 0, "", "", "file is missing")
        texts[wanted] = text or ""
    users = validate_users(USERS_FILE, texts[USERS_FILE])
    students = validate_students(
        STUDENTS_FILE,
        texts[STUDENTS_FILE],
        buildings=users.buildings if users.usable else None,
        today=today,
    )
    links = validate_links(LINKS_FILE, texts[LINKS_FILE], users=users, students=students)
    errors: list[RowError] = []
    for file, result_errors in (
        (USERS_FILE, users.errors),
        (STUDENTS_FILE, students.errors),
        (LINKS_FILE, links.errors),
    ):
        errors.extend([missing[file]] if file in missing else result_errors)
    return RosterValidation(
        users.users,
        students.students,
        links.links,
        errors,
        users.buildings,
        rejected_users=frozenset(users.ids) - {u.employee_id for u in users.users},
        rejected_students=frozenset(students.ids) - {s.student_id for s in students.students},
        usable={
            USERS_FILE: users.usable,
            STUDENTS_FILE: students.usable,
            LINKS_FILE: links.usable and LINKS_FILE not in missing,
        },
    )
