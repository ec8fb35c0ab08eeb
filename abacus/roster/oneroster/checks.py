"""Value checks of OneRoster columns: each raises FieldError(reason) when a value is bad (pure)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import date, datetime

from abacus.roster.oneroster import files as f

__all__ = [
    "CEDS_GRADES",
    "COLUMN_CHECKS",
    "GRADE_MAP",
    "PERSONAL",
    "SECRET",
    "UNROSTERED_GRADES",
    "YES_NO",
    "FieldError",
    "check_date_time",
    "guid_list",
    "shown",
    "staff_id",
    "staff_username",
    "student_grade",
    "student_id",
    "yes_no",
]

CEDS_GRADES = (
    "IT",
    "PR",
    "PK",
    "TK",
    "KG",
    *(f"{n:02d}" for n in range(1, 14)),
    "PS",
    "UG",
    "Other",
)
# CEDS code -> the roster grade ("PK", "K", "1".."12"); the others are rejected for students.
GRADE_MAP = {"PK": "PK", "TK": "PK", "KG": "K", **{f"{n:02d}": str(n) for n in range(1, 13)}}
UNROSTERED_GRADES = {
    "IT": "infant/toddler",
    "PR": "preschool (before PreK)",
    "13": "grade 13",
    "PS": "postsecondary",
    "UG": "ungraded",
    "Other": "not a grade level",
}
YES_NO = {"true": True, "y": True, "yes": True, "1": True, "false": False, "n": False, "no": False}
YES_NO.update({"0": False})

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SHOWN_MAX = 60

Check = Callable[[str], None]


class FieldError(ValueError):
    """The reason a value is not accepted (never contains the value: it may be personal)."""


def text(raw: str) -> None:
    if "\ufffd" in raw:
        raise FieldError("not valid UTF-8")
    if not raw.isprintable():
        raise FieldError("contains control characters")


def guid(raw: str) -> None:
    text(raw)
    if "," in raw:
        raise FieldError("a sourcedId cannot contain ',' (lists are comma-separated)")
    if len(raw) > 255:
        raise FieldError("longer than 255 characters")


def guid_list(raw: str) -> list[str]:
    items = [item.strip() for item in raw.split(",")]
    if any(not item for item in items):
        raise FieldError("empty entry in a comma-separated list")
    for item in items:
        guid(item)
    return items


def _list(raw: str) -> None:
    guid_list(raw)


def enum(options: Sequence[str]) -> Check:
    by_fold = {o.casefold(): o for o in options}

    def check(raw: str) -> None:
        if raw not in options:
            hint = (
                f" (case-sensitive: {by_fold[raw.casefold()]!r})"
                if raw.casefold() in by_fold
                else ""
            )
            raise FieldError(f"must be one of {', '.join(options)}{hint}")

    return check


def boolean(raw: str) -> None:
    enum(("true", "false"))(raw)


def a_date(raw: str) -> None:
    if not _DATE_RE.match(raw):
        raise FieldError("must be a date YYYY-MM-DD")
    try:
        date.fromisoformat(raw)
    except ValueError:
        raise FieldError("not a real calendar date") from None


def check_date_time(raw: str) -> None:
    """dateLastModified: an ISO 8601 date and time (`2024-06-26T12:00:00.000Z`)."""
    if "T" not in raw or not _DATE_RE.match(raw[:10]):
        raise FieldError("must be an ISO 8601 date-time, e.g. 2024-06-26T12:00:00.000Z")
    try:
        datetime.fromisoformat(raw)
    except ValueError:
        raise FieldError("not a real ISO 8601 date-time") from None


def school_year(raw: str) -> None:
    if not (len(raw) == 4 and raw.isdigit()):
        raise FieldError("must be a year YYYY")


def grades(raw: str) -> None:
    for item in raw.split(","):
        code = item.strip()
        if code not in CEDS_GRADES:
            hint = ""
            if code.isdigit() and len(code) == 1:
                hint = f" (two digits: 0{code})"
            elif code.upper() in CEDS_GRADES or code.title() in CEDS_GRADES:
                hint = " (codes are case-sensitive)"
            raise FieldError(
                f"not a CEDS grade code (IT, PR, PK, TK, KG, 01-13, PS, UG, Other){hint}"
            )


def student_grade(raw: str) -> str:
    """A student's `grades` (already valid CEDS codes) -> the roster grade."""
    codes = list(dict.fromkeys(code.strip() for code in raw.split(",")))
    for code in codes:
        if code in UNROSTERED_GRADES:
            raise FieldError(
                f"{code} ({UNROSTERED_GRADES[code]}) is not rostered: a student needs PK, TK, KG"
                " or 01-12"
            )
    mapped = {GRADE_MAP[code] for code in codes}
    if len(mapped) != 1:
        raise FieldError("a student has one grade level; this lists several")
    return mapped.pop()


def email(raw: str) -> None:
    if not raw.isascii() or not _EMAIL_RE.match(raw):
        raise FieldError("not an email address")


def yes_no(raw: str) -> None:
    if raw.casefold() not in YES_NO:
        raise FieldError("must be true/false, Y/N, yes/no or 1/0")


def student_id(raw: str) -> None:
    """`identifier` of a student: the student number (the upload document's StudentID rule)."""
    if not (raw.isascii() and raw.isalnum()):
        raise FieldError("a student's identifier must be letters and digits only (0-9, A-Z)")


def staff_id(raw: str) -> None:
    """A staff member's Employee_ID (`identifier`, else `sourcedId`): 7-bit ASCII, no blanks."""
    if not raw.isascii() or not raw.isprintable() or any(c.isspace() for c in raw):
        raise FieldError("must be 7-bit ASCII without spaces")
    if "|" in raw:
        raise FieldError("must not contain '|'")


def staff_username(raw: str) -> None:
    if not raw.isascii() or any(c.isspace() for c in raw) or not raw.isprintable():
        raise FieldError("a staff username must be 7-bit ASCII without spaces")


def _common(**columns: Check) -> dict[str, Check]:
    return {"sourcedId": guid, **columns}


COLUMN_CHECKS: dict[str, dict[str, Check]] = {
    f.ORGS: _common(name=text, type=enum(f.ORG_TYPES), identifier=text, parentSourcedId=guid),
    f.ACADEMIC_SESSIONS: _common(
        title=text,
        type=enum(f.SESSION_TYPES),
        startDate=a_date,
        endDate=a_date,
        parentSourcedId=guid,
        schoolYear=school_year,
    ),
    f.COURSES: _common(
        schoolYearSourcedId=guid,
        title=text,
        courseCode=text,
        grades=grades,
        orgSourcedId=guid,
        subjects=text,
        subjectCodes=text,
    ),
    f.CLASSES: _common(
        title=text,
        grades=grades,
        courseSourcedId=guid,
        classCode=text,
        classType=enum(f.CLASS_TYPES),
        location=text,
        schoolSourcedId=guid,
        termSourcedIds=_list,
        subjects=text,
        subjectCodes=text,
        periods=text,
    ),
    f.USERS: _common(
        enabledUser=boolean,
        orgSourcedIds=_list,
        role=enum(f.USER_ROLES),
        username=text,
        userIds=text,
        givenName=text,
        familyName=text,
        middleName=text,
        identifier=text,
        email=email,
        sms=text,
        phone=text,
        agentSourcedIds=_list,
        grades=grades,
        password=text,
    ),
    f.ENROLLMENTS: _common(
        classSourcedId=guid,
        schoolSourcedId=guid,
        userSourcedId=guid,
        role=enum(f.ENROLLMENT_ROLES),
        primary=boolean,
        beginDate=a_date,
        endDate=a_date,
    ),
    f.DEMOGRAPHICS: _common(
        birthDate=a_date,
        sex=enum(f.SEXES),
        **dict.fromkeys(f.DEMOGRAPHIC_FLAGS, boolean),
        countryOfBirthCode=text,
        stateOfBirthAbbreviation=text,
        cityOfBirth=text,
        publicSchoolResidenceStatus=text,
    ),
}

# Shown masked in reports (first character + ***); secrets as *** alone.
PERSONAL = {
    f.USERS: frozenset(
        {"username", "userIds", "givenName", "familyName", "middleName", "email", "sms", "phone"}
    ),
    f.DEMOGRAPHICS: frozenset(f.SPECS[f.DEMOGRAPHICS].columns[3:]),
}
SECRET = frozenset({"password"})


def shown(file: str, column: str, raw: str) -> str:
    """A value as the error report may show it."""
    if not raw:
        return ""
    if column in SECRET:
        return "***"
    if column in PERSONAL.get(file, ()) or column.startswith(f.METADATA_PREFIX):
        return raw[0] + "***"
    return raw if len(raw) <= _SHOWN_MAX else raw[: _SHOWN_MAX - 3] + "..."
