"""Validation of the three roster uploads against the upload document's formats (pure).

Each file is checked on its own (`validate_users`, `validate_students`, `validate_links`),
then against the others (buildings named in 1_users.csv, links to valid ids) or, for a file
uploaded alone, against the district's published roster; `validate_roster` runs them
together and is what the importer uses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime

from abacus.district import DISTRICT_DATA_COLUMNS
from abacus.roster.validation.fields import LINK_COLUMNS, USER_COLUMNS, mask, student_columns
from abacus.roster.validation.models import (
    LINKS_FILE,
    ROSTER_FILES,
    STUDENTS_FILE,
    USERS_FILE,
    LinksResult,
    PublishedIds,
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

__all__ = [
    "OnRecord",
    "Reference",
    "Uploaded",
    "validate_links",
    "validate_roster",
    "validate_students",
    "validate_users",
]


def _first_seen(seen: dict[str, int], key: str, line: int) -> int | None:
    """Record `key` at `line`; return the earlier line if it was already seen."""
    if key in seen:
        return seen[key]
    seen[key] = line
    return None


# --- the three files ------------------------------------------------------------------------------


def validate_users(name: str, text: str, *, max_rows: int | None = None) -> UsersResult:
    """Validate `1_users.csv` text on its own."""
    table = read_table(name, text, USER_COLUMNS, max_rows=max_rows)
    users: list[User] = []
    errors = list(table.errors)
    warnings: list[RowError] = []
    ids: dict[str, int] = {}
    usernames: dict[str, int] = {}
    buildings: dict[str, None] = {}
    for line, fields in table.rows if table.usable else []:
        values, row_errors, row_warnings = check_row(table, line, fields, USER_COLUMNS)
        employee_id = values.get("Employee_ID")
        if isinstance(employee_id, str) and (first := _first_seen(ids, employee_id, line)):
            reason = f"duplicate Employee_ID (first at line {first})"
            row_errors.append(RowError(name, line, "Employee_ID", employee_id, reason))
        username = values.get("Username")
        if isinstance(username, str) and (
            first := _first_seen(usernames, username.casefold(), line)
        ):
            reason = f"duplicate Username (first at line {first})"
            row_errors.append(RowError(name, line, "Username", mask(username), reason))
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
            warnings.extend(row_warnings)
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
    return UsersResult(users, errors, ids, frozenset(buildings), table.usable, warnings)


def validate_students(
    name: str,
    text: str,
    *,
    buildings: frozenset[str] | None = None,
    today: date | None = None,
    published: bool = False,
    max_rows: int | None = None,
) -> StudentsResult:
    """Validate `2_students.csv`; `buildings` (from 1_users.csv, or of the published staff
    when `published`) None means "users rejected"."""
    today = today or datetime.now(UTC).date()
    columns = student_columns(today)
    table = read_table(name, text, columns, max_rows=max_rows)
    students: list[Student] = []
    errors = list(table.errors)
    warnings: list[RowError] = []
    published_staff = f"of the published staff ({USERS_FILE} not uploaded)"
    source = published_staff if published else f"named in {USERS_FILE}"
    ids: dict[str, int] = {}
    by_fold = {b.casefold(): b for b in buildings or ()}
    for line, fields in table.rows if table.usable else []:
        values, row_errors, row_warnings = check_row(table, line, fields, columns)
        student_id = values.get("StudentID")
        if isinstance(student_id, str) and (first := _first_seen(ids, student_id, line)):
            reason = f"duplicate StudentID (first at line {first})"
            row_errors.append(RowError(name, line, "StudentID", student_id, reason))
        building = values.get("Building_Name")
        if isinstance(building, str) and (buildings is None or building not in buildings):
            if buildings is None:
                reason = f"cannot be checked: {USERS_FILE} was rejected"
            elif (other := by_fold.get(building.casefold())) is not None:
                reason = f"not a building {source} (case differs from {other!r})"
            else:
                reason = f"not a building {source}"
            row_errors.append(RowError(name, line, "Building_Name", building, reason))
        errors.extend(row_errors)
        if not row_errors:
            warnings.extend(row_warnings)
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
    return StudentsResult(students, errors, ids, table.usable, warnings)


class _Zeros:
    """Finds the id that differs from another only by leading zeros (built on first use)."""

    def __init__(self, ids: Iterable[str]) -> None:
        self._ids = ids
        self._stripped: dict[str, str] | None = None

    def __call__(self, ident: str) -> str | None:
        if self._stripped is None:
            self._stripped = {}
            for other in self._ids:
                self._stripped.setdefault(other.lstrip("0"), other)
        other = self._stripped.get(ident.lstrip("0"))
        return other if other != ident else None


@dataclass(frozen=True, slots=True)
class Uploaded:
    """Ids a link may name, from this upload's file: `valid` rows, `ids` every
    well-formed id (line), `usable` False when the file itself was rejected."""

    file: str
    valid: frozenset[str]
    ids: Mapping[str, int]
    usable: bool

    def why_not(self, ident: str, zeros: _Zeros) -> str | None:
        if ident in self.valid:
            return None
        if ident in self.ids:
            return f"refers to a rejected row in {self.file} (line {self.ids[ident]})"
        if other := zeros(ident):
            return f"leading zeros differ from {self.file} ({other})"
        if not self.usable:
            return f"cannot be checked: {self.file} was rejected"
        return f"not found in {self.file}"


@dataclass(frozen=True, slots=True)
class OnRecord:
    """Ids a link may name, from the published roster (the file was not uploaded):
    id -> active."""

    file: str
    ids: Mapping[str, bool]

    def why_not(self, ident: str, zeros: _Zeros) -> str | None:
        active = self.ids.get(ident)
        if active:
            return None
        if active is False:
            return f"deactivated on the published roster ({self.file} not uploaded)"
        if other := zeros(ident):
            return f"leading zeros differ from the published roster ({other})"
        return f"not on the published roster ({self.file} not uploaded)"


Reference = Uploaded | OnRecord


def validate_links(
    name: str,
    text: str,
    *,
    staff: Reference,
    students: Reference,
    max_rows: int | None = None,
) -> LinksResult:
    """Validate `3_teacher_students.csv`: its ids must name valid staff and students (of
    this upload, or of the published roster for a file not uploaded)."""
    table = read_table(name, text, LINK_COLUMNS, max_rows=max_rows)
    links: list[TeacherStudentLink] = []
    errors = list(table.errors)
    zeros = {
        "EmployeeID": _Zeros(staff.ids),
        "StudentID": _Zeros(students.ids),
    }
    seen: dict[str, int] = {}
    for line, fields in table.rows if table.usable else []:
        values, row_errors, _ = check_row(table, line, fields, LINK_COLUMNS)
        for column, ref in (("EmployeeID", staff), ("StudentID", students)):
            ident = values.get(column)
            if isinstance(ident, str) and (reason := ref.why_not(ident, zeros[column])):
                row_errors.append(RowError(name, line, column, ident, reason))
        if not row_errors:
            employee_id, student_id = str(values["EmployeeID"]), str(values["StudentID"])
            pair = f"{employee_id},{student_id}"
            if first := _first_seen(seen, pair, line):
                row_errors.append(
                    RowError(name, line, "", pair, f"duplicate link (first at line {first})")
                )
            else:
                links.append(TeacherStudentLink(employee_id, student_id, line))
        errors.extend(row_errors)
    return LinksResult(links, errors, table.usable)


def validate_roster(
    files: Mapping[str, bytes | str],
    *,
    today: date | None = None,
    published: PublishedIds | None = None,
    max_rows: int | None = None,
) -> RosterValidation:
    """Validate the uploads together (keys are file names; values bytes or text).

    Without `published`, all three files are expected (a missing one is an error). With
    it, each file may come alone: what a file names but the upload lacks (the buildings of
    1_users.csv, the ids of 1_users.csv and 2_students.csv) is looked up in the published
    roster instead. RosterInputError for a file over `max_rows` rows.
    """
    texts = {wanted: lookup(files, wanted) for wanted in ROSTER_FILES}
    uploaded = frozenset(f for f, text in texts.items() if text is not None)
    missing = {
        f: RowError(f, 0, "", "", "file is missing")
        for f in ROSTER_FILES
        if f not in uploaded and published is None
    }
    users = validate_users(USERS_FILE, texts[USERS_FILE] or "", max_rows=max_rows)
    users_from_record = published is not None and USERS_FILE not in uploaded
    if users_from_record:
        assert published is not None
        buildings: frozenset[str] | None = published.buildings
        staff: Reference = OnRecord(USERS_FILE, published.staff)
    else:
        buildings = users.buildings if users.usable else None
        valid = frozenset(u.employee_id for u in users.users)
        staff = Uploaded(USERS_FILE, valid, users.ids, users.usable)
    students = validate_students(
        STUDENTS_FILE,
        texts[STUDENTS_FILE] or "",
        buildings=buildings,
        today=today,
        published=users_from_record,
        max_rows=max_rows,
    )
    if published is not None and STUDENTS_FILE not in uploaded:
        pupils: Reference = OnRecord(STUDENTS_FILE, published.students)
    else:
        valid = frozenset(s.student_id for s in students.students)
        pupils = Uploaded(STUDENTS_FILE, valid, students.ids, students.usable)
    links = validate_links(
        LINKS_FILE, texts[LINKS_FILE] or "", staff=staff, students=pupils, max_rows=max_rows
    )
    errors: list[RowError] = []
    warnings: list[RowError] = []
    results = ((USERS_FILE, users), (STUDENTS_FILE, students), (LINKS_FILE, links))
    for file, result in results:
        if file in missing:
            errors.append(missing[file])
        elif file in uploaded:
            errors.extend(result.errors)
            warnings.extend(getattr(result, "warnings", ()))
    return RosterValidation(
        users.users if USERS_FILE in uploaded else [],
        students.students if STUDENTS_FILE in uploaded else [],
        links.links if LINKS_FILE in uploaded else [],
        errors,
        users.buildings,
        rejected_users=frozenset(users.ids) - {u.employee_id for u in users.users},
        rejected_students=frozenset(students.ids) - {s.student_id for s in students.students},
        usable={
            USERS_FILE: users.usable and USERS_FILE in uploaded,
            STUDENTS_FILE: students.usable and STUDENTS_FILE in uploaded,
            LINKS_FILE: links.usable and LINKS_FILE in uploaded,
        },
        warnings=warnings,
        uploaded=uploaded,
    )
