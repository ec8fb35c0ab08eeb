"""Validation of the three roster uploads against the upload document's formats (pure, no I/O)."""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import IntEnum
from pathlib import Path

from abacus.domain.passing import normalize_grade as _normalize_grade

__all__ = [
    "DISTRICT_DATA_COLUMNS",
    "ETHNICITIES",
    "GRADES",
    "LINKS_FILE",
    "RACES",
    "ROSTER_FILES",
    "STUDENTS_FILE",
    "USERS_FILE",
    "LinksResult",
    "RosterValidation",
    "RowError",
    "Student",
    "StudentsResult",
    "TeacherStudentLink",
    "User",
    "UserType",
    "UsersResult",
    "decode_upload",
    "mask",
    "normalize_grade",
    "read_roster_dir",
    "validate_links",
    "validate_roster",
    "validate_students",
    "validate_users",
]

USERS_FILE = "1_users.csv"
STUDENTS_FILE = "2_students.csv"
LINKS_FILE = "3_teacher_students.csv"
ROSTER_FILES = (USERS_FILE, STUDENTS_FILE, LINKS_FILE)

GRADES = ("PK", "K", *(str(n) for n in range(1, 13)))
ETHNICITIES = ("Hispanic/Latino", "Not Hispanic/Latino")
RACES = (
    "American Indian or Alaskan Native",
    "Asian",
    "Black or African American",
    "Native Hawaiian or Other Pacific Islander",
    "White",
    "Two or More Races",
)
DISTRICT_DATA_COLUMNS = tuple(f"District_Data_{n}" for n in range(1, 6))

_DOB_RE = re.compile(r"^(\d{2})/(\d{2})/(\d{4})$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SHOWN_MAX = 60


class UserType(IntEnum):
    """`User_Type` codes; 4 (admin) is Abacus's documented extension."""

    TEACHER = 1
    BUILDING = 2
    DISTRICT = 3
    ADMIN = 4


@dataclass(frozen=True, slots=True)
class RowError:
    """One problem: `line` is the 1-based physical line (header = 1; 0 = whole file)."""

    file: str
    line: int
    column: str
    value: str  # masked for personal data
    reason: str


@dataclass(frozen=True, slots=True)
class User:
    employee_id: str
    username: str
    email: str | None
    password_sha256: str | None
    first_name: str
    last_name: str | None
    buildings: tuple[str, ...]
    user_type: UserType
    line: int

    @property
    def display_name(self) -> str:
        return f"{self.first_name} {self.last_name}" if self.last_name else self.first_name


@dataclass(frozen=True, slots=True)
class Student:
    student_id: str
    date_of_birth: date | None  # None: not given (a OneRoster package keeps no demographics)
    last_name: str
    first_name: str
    grade: str  # "PK", "K", "1".."12"
    building: str
    gender: str
    is_iep: bool  # SPED
    is_ell: bool
    ethnicity: str
    race: str
    district_data: dict[str, str] = field(hash=False)  # non-blank District_Data_N only
    password_sha256: str | None = None
    line: int = 0


@dataclass(frozen=True, slots=True)
class TeacherStudentLink:
    employee_id: str
    student_id: str
    line: int


@dataclass(frozen=True, slots=True)
class UsersResult:
    users: list[User]
    errors: list[RowError]
    ids: dict[str, int]  # every well-formed Employee_ID -> first line, valid row or not
    buildings: frozenset[str]  # every building named in a well-formed Building_Names
    usable: bool  # False when the file itself (not a row) was rejected


@dataclass(frozen=True, slots=True)
class StudentsResult:
    students: list[Student]
    errors: list[RowError]
    ids: dict[str, int]
    usable: bool


@dataclass(frozen=True, slots=True)
class LinksResult:
    links: list[TeacherStudentLink]
    errors: list[RowError]


@dataclass(frozen=True, slots=True)
class RosterValidation:
    """Valid rows of each file plus every error; bad rows are left out of the lists."""

    users: list[User]
    students: list[Student]
    links: list[TeacherStudentLink]
    errors: list[RowError]
    buildings: frozenset[str] = frozenset()

    @property
    def ok(self) -> bool:
        return not self.errors


class _FieldError(ValueError):
    pass


# --- field checks: return the normalised value or raise _FieldError(reason) ---------------------


def _ascii(raw: str) -> str:
    if "\ufffd" in raw:
        raise _FieldError("not valid UTF-8")
    if not raw.isascii():
        raise _FieldError("not 7-bit ASCII")
    if not raw.isprintable():
        raise _FieldError("contains control characters")
    return raw


def _identifier(raw: str) -> str:
    if not _ascii(raw).isalnum():
        raise _FieldError("must be letters and digits only (0-9, A-Z)")
    return raw


def _username(raw: str) -> str:
    if any(c.isspace() for c in _ascii(raw)):
        raise _FieldError("must not contain spaces")
    return raw


def _email(raw: str) -> str:
    if not _EMAIL_RE.match(_ascii(raw)):
        raise _FieldError("not an email address")
    return raw


def _password_hash(raw: str) -> str:
    return hashlib.sha256(_ascii(raw).encode("ascii")).hexdigest()


def _buildings(raw: str) -> tuple[str, ...]:
    names = [part.strip() for part in _ascii(raw).split(";")]
    if any(not name for name in names):
        raise _FieldError("empty building name in ';'-separated list")
    return tuple(dict.fromkeys(names))


def _user_type(raw: str) -> UserType:
    if raw not in {"1", "2", "3", "4"}:
        raise _FieldError("must be 1 (teacher), 2 (building), 3 (district) or 4 (admin)")
    return UserType(int(raw))


def normalize_grade(value: str) -> str:
    """`K`/`KG`/`PK`/`1`-`12` (leading zero allowed, any case, surrounding blanks ignored)
    -> "PK", "K", "1".."12". The rule itself is :func:`abacus.domain.passing.normalize_grade`
    (shared with event validation); rosters only trim first."""
    return _normalize_grade(value.strip())


def _grade(raw: str) -> str:
    try:
        return normalize_grade(raw)
    except ValueError:
        raise _FieldError("grade must be PK, K/KG or 1-12") from None


def _date_of_birth(today: date) -> Callable[[str], date]:
    def check(raw: str) -> date:
        match = _DOB_RE.match(raw)
        if not match:
            raise _FieldError("must be mm/dd/yyyy with slashes")
        try:
            born = date(int(match[3]), int(match[1]), int(match[2]))
        except ValueError:
            raise _FieldError("not a real calendar date") from None
        if born > today:
            raise _FieldError("date is in the future")
        if born.year < 1900:
            raise _FieldError("date is before 1900")
        return born

    return check


def _code(allowed: Mapping[str, object], reason: str) -> Callable[[str], object]:
    def check(raw: str) -> object:
        try:
            return allowed[raw.upper()]
        except KeyError:
            raise _FieldError(reason) from None

    return check


def _choice(options: Sequence[str], column: str) -> Callable[[str], object]:
    by_key = {option.casefold(): option for option in options}

    def check(raw: str) -> str:
        try:
            return by_key[" ".join(raw.split()).casefold()]
        except KeyError:
            raise _FieldError(f"not an allowed {column} value") from None

    return check


@dataclass(frozen=True, slots=True)
class _Column:
    name: str
    check: Callable[[str], object]
    header_required: bool = True
    value_required: bool = True
    personal: bool = False
    secret: bool = False


_USER_COLUMNS = (
    _Column("Employee_ID", _identifier),
    _Column("Username", _username),
    _Column("Email", _email, value_required=False, personal=True),
    _Column("Password", _password_hash, value_required=False, secret=True),
    _Column("First_Name", _ascii, personal=True),
    _Column("Last_Name", _ascii, header_required=False, value_required=False, personal=True),
    _Column("Building_Names", _buildings, value_required=False),
    _Column("User_Type", _user_type),
)
_YES_NO = {"Y": True, "N": False}


def _student_columns(today: date) -> tuple[_Column, ...]:
    return (
        _Column("StudentID", _identifier),
        _Column("Date_of_Birth", _date_of_birth(today), personal=True),
        _Column("Last", _ascii, personal=True),
        _Column("First", _ascii, personal=True),
        _Column("Grade", _grade),
        _Column("Building_Name", _ascii),
        _Column("Gender", _code({"F": "F", "M": "M"}, "must be F or M")),
        _Column("SPED", _code(_YES_NO, "must be Y or N")),
        _Column("Ethnicity", _choice(ETHNICITIES, "Ethnicity")),
        _Column("Race", _choice(RACES, "Race")),
        _Column("ELL", _code(_YES_NO, "must be Y or N")),
        *(
            _Column(c, _ascii, header_required=False, value_required=False)
            for c in DISTRICT_DATA_COLUMNS
        ),
        _Column(
            "Password", _password_hash, header_required=False, value_required=False, secret=True
        ),
    )


_LINK_COLUMNS = (_Column("EmployeeID", _identifier), _Column("StudentID", _identifier))


def mask(value: str, *, secret: bool = False) -> str:
    """Hide personal data in reports: first character + "***" ("***" alone for secrets)."""
    if not value:
        return ""
    return "***" if secret else value[0] + "***"


def _shown(raw: str, column: _Column) -> str:
    if column.personal or column.secret:
        return mask(raw, secret=column.secret)
    return raw if len(raw) <= _SHOWN_MAX else raw[: _SHOWN_MAX - 3] + "..."


# --- reading --------------------------------------------------------------------------------------


def decode_upload(payload: bytes) -> str:
    """Bytes -> text: UTF-8 with or without BOM (UTF-16 if it has a BOM); bad bytes become U+FFFD,
    which the field checks then report on the row they occur in."""
    if payload.startswith((b"\xff\xfe", b"\xfe\xff")):
        return payload.decode("utf-16", errors="replace")
    return payload.decode("utf-8-sig", errors="replace")


def _canon(header: str) -> str:
    return header.strip().lstrip("\ufeff").replace("_", "").replace(" ", "").casefold()


@dataclass
class _Table:
    name: str
    header: dict[str, int]
    rows: list[tuple[int, list[str]]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    width: int = 0
    usable: bool = True  # False once the file itself (not just a row) is rejected


def _read_table(name: str, text: str, columns: Sequence[_Column]) -> _Table:
    table = _Table(name, {})
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""), skipinitialspace=True)
    header_line = 0
    while True:
        start = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            table.errors.append(RowError(name, start, "", "", f"unreadable CSV: {exc}"))
            table.usable = False
            break
        fields = [f.strip() for f in fields]
        if not any(fields):
            continue
        if not header_line:
            header_line = start
            if not _read_header(table, start, fields, columns):
                break
            continue
        width = table.width
        if len(fields) > width and any(fields[width:]):
            reason = f"row has {len(fields)} fields but the header has {width}"
            table.errors.append(RowError(name, start, "", "", reason))
            continue
        table.rows.append((start, fields))
    if not header_line and table.usable:
        table.errors.append(RowError(name, 0, "", "", "file is empty (no header row)"))
        table.usable = False
    return table


def _read_header(table: _Table, line: int, fields: list[str], columns: Sequence[_Column]) -> bool:
    by_canon = {_canon(c.name): c.name for c in columns}
    table.width = len(fields)
    for index, raw in enumerate(fields):
        column = by_canon.get(_canon(raw))
        if column is None:
            continue  # unknown columns are ignored
        if column in table.header:
            table.errors.append(RowError(table.name, line, column, "", "duplicate column"))
            table.usable = False
        table.header[column] = index
    for column in columns:
        if column.header_required and column.name not in table.header:
            table.errors.append(
                RowError(table.name, line, column.name, "", "missing required column")
            )
            table.usable = False
    return table.usable


def _check_row(
    table: _Table, line: int, fields: list[str], columns: Sequence[_Column]
) -> tuple[dict[str, object], list[RowError]]:
    values: dict[str, object] = {}
    errors: list[RowError] = []
    for column in columns:
        index = table.header.get(column.name)
        raw = fields[index] if index is not None and index < len(fields) else ""
        if not raw:
            if column.value_required:
                errors.append(
                    RowError(table.name, line, column.name, "", "required value is blank")
                )
            continue
        try:
            values[column.name] = column.check(raw)
        except _FieldError as exc:
            errors.append(RowError(table.name, line, column.name, _shown(raw, column), str(exc)))
    return values, errors


def _first_seen(seen: dict[str, int], key: str, line: int) -> int | None:
    """Record `key` at `line`; return the earlier line if it was already seen."""
    if key in seen:
        return seen[key]
    seen[key] = line
    return None


# --- the three files ------------------------------------------------------------------------------


def validate_users(name: str, text: str) -> UsersResult:
    """Validate `1_users.csv` text on its own."""
    table = _read_table(name, text, _USER_COLUMNS)
    users: list[User] = []
    errors = list(table.errors)
    ids: dict[str, int] = {}
    usernames: dict[str, int] = {}
    buildings: dict[str, None] = {}
    for line, fields in table.rows if table.usable else []:
        values, row_errors = _check_row(table, line, fields, _USER_COLUMNS)
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
                    password_sha256=values.get("Password"),  # type: ignore[arg-type]
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
    columns = _student_columns(today)
    table = _read_table(name, text, columns)
    students: list[Student] = []
    errors = list(table.errors)
    ids: dict[str, int] = {}
    by_fold = {b.casefold(): b for b in buildings or ()}
    for line, fields in table.rows if table.usable else []:
        values, row_errors = _check_row(table, line, fields, columns)
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
                    password_sha256=values.get("Password"),  # type: ignore[arg-type]
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
    table = _read_table(name, text, _LINK_COLUMNS)
    links: list[TeacherStudentLink] = []
    errors = list(table.errors)
    valid_users = {u.employee_id for u in users.users}
    valid_students = {s.student_id for s in students.students}
    seen: dict[str, int] = {}
    for line, fields in table.rows if table.usable else []:
        values, row_errors = _check_row(table, line, fields, _LINK_COLUMNS)
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
    return LinksResult(links, errors)


def _lookup(files: Mapping[str, bytes | str], wanted: str) -> str | None:
    for key, payload in files.items():
        if Path(key).name == wanted:
            return decode_upload(payload) if isinstance(payload, bytes) else payload
    return None


def validate_roster(
    files: Mapping[str, bytes | str], *, today: date | None = None
) -> RosterValidation:
    """Validate the three uploads together (keys are file names; values bytes or text)."""
    missing: dict[str, RowError] = {}
    texts: dict[str, str] = {}
    for wanted in ROSTER_FILES:
        text = _lookup(files, wanted)
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
    return RosterValidation(users.users, students.students, links.links, errors, users.buildings)


def read_roster_dir(directory: Path) -> dict[str, bytes]:
    """The roster files present in `directory` (absent ones are reported by validate_roster)."""
    return {n: (directory / n).read_bytes() for n in ROSTER_FILES if (directory / n).is_file()}
