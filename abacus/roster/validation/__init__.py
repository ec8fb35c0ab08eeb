"""Validation of the three roster uploads, by concept: models, field checks, readers,
validators. The public names are re-exported here (`from abacus.roster.validation import …`).
"""

from abacus.roster.validation.fields import mask, normalize_grade
from abacus.roster.validation.models import (
    ETHNICITIES,
    LINKS_FILE,
    RACES,
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
from abacus.roster.validation.readers import decode_upload, read_roster_dir
from abacus.roster.validation.validate import (
    validate_links,
    validate_roster,
    validate_students,
    validate_users,
)

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
    "decode_upload",
    "mask",
    "normalize_grade",
    "read_roster_dir",
    "validate_links",
    "validate_roster",
    "validate_students",
    "validate_users",
]
