"""The OneRoster 1.1 CSV binding as data: files, headers in spec order, required columns, enums."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "ACADEMIC_SESSIONS",
    "CLASSES",
    "CLASS_TYPES",
    "COURSES",
    "DEMOGRAPHICS",
    "DEMOGRAPHIC_FLAGS",
    "ENROLLMENTS",
    "ENROLLMENT_ROLES",
    "MANIFEST",
    "MANIFEST_FILES",
    "METADATA_PREFIX",
    "ORGS",
    "ORG_TYPES",
    "READ_FILES",
    "SESSION_TYPES",
    "SEXES",
    "SPECS",
    "STAFF_ROLES",
    "USERS",
    "USER_ROLES",
    "FileSpec",
    "Mode",
]

MANIFEST = "manifest.csv"
ORGS = "orgs.csv"
ACADEMIC_SESSIONS = "academicSessions.csv"
COURSES = "courses.csv"
CLASSES = "classes.csv"
USERS = "users.csv"
ENROLLMENTS = "enrollments.csv"
DEMOGRAPHICS = "demographics.csv"

# Extension columns: after the spec's columns, each header starting with this prefix.
METADATA_PREFIX = "metadata."


class Mode(StrEnum):
    """`file.X` in manifest.csv: how the file's rows change what is stored."""

    ABSENT = "absent"  # not supplied: what was stored for it stays as it is
    BULK = "bulk"  # the complete set: rows not in it are gone; status/dateLastModified blank
    DELTA = "delta"  # changes only: status active (upsert) or tobedeleted; dateLastModified set


@dataclass(frozen=True, slots=True)
class FileSpec:
    name: str
    columns: tuple[str, ...]  # every column, in spec order (headers are case-sensitive)
    required: frozenset[str]  # columns whose value may not be blank


_BASE = ("sourcedId", "status", "dateLastModified")
# The true/false columns of demographics.csv, in spec order.
DEMOGRAPHIC_FLAGS = (
    "americanIndianOrAlaskaNative",
    "asian",
    "blackOrAfricanAmerican",
    "nativeHawaiianOrOtherPacificIslander",
    "white",
    "demographicRaceTwoOrMoreRaces",
    "hispanicOrLatinoEthnicity",
)


def _spec(name: str, columns: tuple[str, ...], *required: str) -> FileSpec:
    return FileSpec(name, (*_BASE, *columns), frozenset(("sourcedId", *required)))


SPECS: dict[str, FileSpec] = {
    s.name: s
    for s in (
        _spec(
            ORGS,
            ("name", "type", "identifier", "parentSourcedId"),
            "name",
            "type",
        ),
        _spec(
            ACADEMIC_SESSIONS,
            ("title", "type", "startDate", "endDate", "parentSourcedId", "schoolYear"),
            "title",
            "type",
            "startDate",
            "endDate",
            "schoolYear",
        ),
        _spec(
            COURSES,
            (
                "schoolYearSourcedId",
                "title",
                "courseCode",
                "grades",
                "orgSourcedId",
                "subjects",
                "subjectCodes",
            ),
            "title",
            "orgSourcedId",
        ),
        _spec(
            CLASSES,
            (
                "title",
                "grades",
                "courseSourcedId",
                "classCode",
                "classType",
                "location",
                "schoolSourcedId",
                "termSourcedIds",
                "subjects",
                "subjectCodes",
                "periods",
            ),
            "title",
            "courseSourcedId",
            "classType",
            "schoolSourcedId",
            "termSourcedIds",
        ),
        _spec(
            USERS,
            (
                "enabledUser",
                "orgSourcedIds",
                "role",
                "username",
                "userIds",
                "givenName",
                "familyName",
                "middleName",
                "identifier",
                "email",
                "sms",
                "phone",
                "agentSourcedIds",
                "grades",
                "password",
            ),
            "enabledUser",
            "orgSourcedIds",
            "role",
            "username",
            "givenName",
            "familyName",
        ),
        _spec(
            ENROLLMENTS,
            (
                "classSourcedId",
                "schoolSourcedId",
                "userSourcedId",
                "role",
                "primary",
                "beginDate",
                "endDate",
            ),
            "classSourcedId",
            "schoolSourcedId",
            "userSourcedId",
            "role",
        ),
        _spec(
            DEMOGRAPHICS,
            (
                "birthDate",
                "sex",
                *DEMOGRAPHIC_FLAGS,
                "countryOfBirthCode",
                "stateOfBirthAbbreviation",
                "cityOfBirth",
                "publicSchoolResidenceStatus",
            ),
        ),
    )
}

# Files this importer reads, in the order they are checked (references point backwards).
READ_FILES = (ORGS, ACADEMIC_SESSIONS, COURSES, CLASSES, USERS, ENROLLMENTS, DEMOGRAPHICS)

# Every `file.X` property of a 1.1 manifest; the gradebook and resource files are accepted
# in the manifest and never read.
MANIFEST_FILES = (
    "academicSessions",
    "categories",
    "classes",
    "classResources",
    "courses",
    "courseResources",
    "demographics",
    "enrollments",
    "lineItems",
    "orgs",
    "resources",
    "results",
    "users",
)

ORG_TYPES = ("department", "school", "district", "local", "state", "national")
USER_ROLES = (
    "administrator",
    "aide",
    "guardian",
    "parent",
    "proctor",
    "relative",
    "student",
    "teacher",
)
ENROLLMENT_ROLES = ("administrator", "proctor", "student", "teacher")
STAFF_ROLES = frozenset({"teacher", "aide", "administrator"})  # become roster users
CLASS_TYPES = ("homeroom", "scheduled")
SESSION_TYPES = ("gradingPeriod", "semester", "schoolYear", "term")
SEXES = ("male", "female")
