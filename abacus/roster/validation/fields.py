"""Field checks of the roster columns: each returns the normalised value or raises FieldError."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from pydantic import SecretStr

from abacus.district import DISTRICT_DATA_COLUMNS
from abacus.domain.grades import normalize_grade as _normalize_grade
from abacus.errors import AbacusError
from abacus.roster.validation.models import ETHNICITIES, RACES, UserType

__all__ = [
    "LINK_COLUMNS",
    "USER_COLUMNS",
    "Column",
    "FieldError",
    "mask",
    "normalize_grade",
    "shown",
    "student_columns",
]

_DOB_RE = re.compile(r"^(\d{2})/(\d{2})/(\d{4})$")
_DIGIT_RE = re.compile(r"[0-9]")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SHOWN_MAX = 60


class FieldError(AbacusError, ValueError):
    pass


# --- field checks: return the normalised value or raise FieldError(reason) ---------------------


def _ascii(raw: str) -> str:
    if not raw.isascii():
        raise FieldError("not valid UTF-8" if "\ufffd" in raw else "not 7-bit ASCII")
    if not raw.isprintable():
        raise FieldError("contains control characters")
    return raw


def _student_id(raw: str) -> str:
    # StudentID: A/N "0-9, A-Z" (2_students.csv); letters and digits only.
    if not _ascii(raw).isalnum():
        raise FieldError("must be letters and digits only (0-9, A-Z)")
    return raw


def _staff_id(raw: str) -> str:
    # Employee_ID / EmployeeID: A/N "0-9, A-Z, including 7-bit ASCII characters" -- any
    # printable 7-bit ASCII character ("T-100", "ann.b", "O'Neil#7"); no control characters.
    return _ascii(raw)


def _name_warning(raw: str) -> str | None:
    """Names are type A ("alpha and any ASCII 7-bit non-numeric characters"): a digit is
    reported, and the name imported as it is (it may be a real name, or a shifted column)."""
    if _DIGIT_RE.search(raw):
        return "warning: contains digits (a name is type A: no numeric characters); imported as is"
    return None


def _username(raw: str) -> str:
    if any(c.isspace() for c in _ascii(raw)):
        raise FieldError("must not contain spaces")
    return raw


def _email(raw: str) -> str:
    if not _EMAIL_RE.match(_ascii(raw)):
        raise FieldError("not an email address")
    return raw


def _password(raw: str) -> SecretStr:
    # Kept only in memory: the importer hashes it (argon2id) before anything is published,
    # and a SecretStr never shows its value in a repr, a log line or a traceback.
    return SecretStr(_ascii(raw))


def _buildings(raw: str) -> tuple[str, ...]:
    names = [part.strip() for part in _ascii(raw).split(";")]
    if any(not name for name in names):
        raise FieldError("empty building name in ';'-separated list")
    return tuple(dict.fromkeys(names))


def _user_type(raw: str) -> UserType:
    if raw not in {"1", "2", "3", "4"}:
        raise FieldError("must be 1 (teacher), 2 (building), 3 (district) or 4 (admin)")
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
        raise FieldError("grade must be PK, K/KG or 1-12") from None


def _date_of_birth(today: date) -> Callable[[str], date]:
    def check(raw: str) -> date:
        match = _DOB_RE.match(raw)
        if not match:
            raise FieldError("must be mm/dd/yyyy with slashes")
        try:
            born = date(int(match[3]), int(match[1]), int(match[2]))
        except ValueError:
            raise FieldError("not a real calendar date") from None
        if born > today:
            raise FieldError("date is in the future")
        if born.year < 1900:
            raise FieldError("date is before 1900")
        return born

    return check


def _code(allowed: Mapping[str, object], reason: str) -> Callable[[str], object]:
    def check(raw: str) -> object:
        try:
            return allowed[raw.upper()]
        except KeyError:
            raise FieldError(reason) from None

    return check


def _choice(options: Sequence[str], column: str) -> Callable[[str], object]:
    by_key = {option.casefold(): option for option in options}

    def check(raw: str) -> str:
        try:
            return by_key[" ".join(raw.split()).casefold()]
        except KeyError:
            raise FieldError(f"not an allowed {column} value") from None

    return check


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    check: Callable[[str], object]
    header_required: bool = True
    value_required: bool = True
    personal: bool = False
    secret: bool = False
    # A finding that does not reject the row (the value is imported): its reason, or None.
    warn: Callable[[str], str | None] | None = None


# Email and Password are optional values, so a file may leave their columns out.
USER_COLUMNS = (
    Column("Employee_ID", _staff_id),
    Column("Username", _username, personal=True),
    Column("Email", _email, header_required=False, value_required=False, personal=True),
    Column("Password", _password, header_required=False, value_required=False, secret=True),
    Column("First_Name", _ascii, personal=True, warn=_name_warning),
    Column(
        "Last_Name",
        _ascii,
        header_required=False,
        value_required=False,
        personal=True,
        warn=_name_warning,
    ),
    Column("Building_Names", _buildings, value_required=False),
    Column("User_Type", _user_type),
)
_YES_NO = {"Y": True, "N": False}


def student_columns(today: date) -> tuple[Column, ...]:
    return (
        Column("StudentID", _student_id),
        Column("Date_of_Birth", _date_of_birth(today), personal=True),
        Column("Last", _ascii, personal=True, warn=_name_warning),
        Column("First", _ascii, personal=True, warn=_name_warning),
        Column("Grade", _grade),
        Column("Building_Name", _ascii),
        Column("Gender", _code({"F": "F", "M": "M"}, "must be F or M")),
        Column("SPED", _code(_YES_NO, "must be Y or N")),
        Column("Ethnicity", _choice(ETHNICITIES, "Ethnicity")),
        Column("Race", _choice(RACES, "Race")),
        Column("ELL", _code(_YES_NO, "must be Y or N")),
        *(  # often usernames and SIS numbers: masked in reports like names
            Column(c, _ascii, header_required=False, value_required=False, personal=True)
            for c in DISTRICT_DATA_COLUMNS
        ),
        Column("Password", _password, header_required=False, value_required=False, secret=True),
    )


# StudentID here is "N" in the document (nnnnn), yet it must name a StudentID of
# 2_students.csv, which is A/N: the same rule as there, so every student can be linked.
LINK_COLUMNS = (Column("EmployeeID", _staff_id), Column("StudentID", _student_id))


def mask(value: str, *, secret: bool = False) -> str:
    """Hide personal data in reports: first character + "***" ("***" alone for secrets)."""
    if not value:
        return ""
    return "***" if secret else value[0] + "***"


def shown(raw: str, column: Column) -> str:
    if column.personal or column.secret:
        return mask(raw, secret=column.secret)
    return raw if len(raw) <= _SHOWN_MAX else raw[: _SHOWN_MAX - 3] + "..."
