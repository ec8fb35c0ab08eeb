"""Roster upload models: the three files, their rows once valid, and the errors reported."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import IntEnum

from pydantic import SecretStr

__all__ = [
    "ETHNICITIES",
    "LINKS_FILE",
    "RACES",
    "ROSTER_FILES",
    "STUDENTS_FILE",
    "USERS_FILE",
    "LinksResult",
    "PublishedIds",
    "RosterValidation",
    "RowError",
    "Student",
    "StudentsResult",
    "TeacherStudentLink",
    "User",
    "UserType",
    "UsersResult",
]

USERS_FILE = "1_users.csv"
STUDENTS_FILE = "2_students.csv"
LINKS_FILE = "3_teacher_students.csv"
ROSTER_FILES = (USERS_FILE, STUDENTS_FILE, LINKS_FILE)

ETHNICITIES = ("Hispanic/Latino", "Not Hispanic/Latino")
RACES = (
    "American Indian or Alaskan Native",
    "Asian",
    "Black or African American",
    "Native Hawaiian or Other Pacific Islander",
    "White",
    "Two or More Races",
)


class UserType(IntEnum):
    """`User_Type` codes; 4 (admin) is Abacus's documented extension."""

    TEACHER = 1
    BUILDING = 2
    DISTRICT = 3
    ADMIN = 4


@dataclass(frozen=True, slots=True)
class RowError:
    """One problem: `line` is the 1-based physical line (header = 1; 0 = whole file).
    A ``warning`` does not reject its row (its reason starts with "warning: ")."""

    file: str
    line: int
    column: str
    value: str  # masked for personal data
    reason: str
    warning: bool = False


@dataclass(frozen=True, slots=True)
class User:
    employee_id: str
    username: str
    email: str | None
    password: SecretStr | None  # plain, in memory only: the importer hashes it
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
    warnings: list[RowError] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class StudentsResult:
    students: list[Student]
    errors: list[RowError]
    ids: dict[str, int]
    usable: bool
    warnings: list[RowError] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class LinksResult:
    links: list[TeacherStudentLink]
    errors: list[RowError]
    usable: bool = True


@dataclass(frozen=True, slots=True)
class PublishedIds:
    """A district's published roster, for checking a file uploaded without the others:
    staff and student ids (True: active) and the buildings its active staff name."""

    staff: Mapping[str, bool] = field(default_factory=dict)
    students: Mapping[str, bool] = field(default_factory=dict)
    buildings: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class RosterValidation:
    """Valid rows of each file plus every error; bad rows are left out of the lists."""

    users: list[User]
    students: list[Student]
    links: list[TeacherStudentLink]
    errors: list[RowError]
    buildings: frozenset[str] = frozenset()
    # Ids of rows present in the upload but rejected (a typo must not deactivate anyone).
    rejected_users: frozenset[str] = frozenset()
    rejected_students: frozenset[str] = frozenset()
    # Per file: False when the file itself (not a row) was rejected or is missing.
    usable: Mapping[str, bool] = field(default_factory=dict)
    warnings: list[RowError] = field(default_factory=list)  # rows imported all the same
    uploaded: frozenset[str] = frozenset()  # the files present in the upload

    @property
    def ok(self) -> bool:
        return not self.errors
