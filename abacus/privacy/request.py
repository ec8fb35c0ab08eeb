"""Deletion requests as they arrive on `privacy-requests`, and who may make them (pure).

A request deletes some students of a district (``students``), a whole district at the end of
its contract (``district``), or lifts an earlier deletion's deny-list entry (``reenable``) so
that a student rostered again with the same id can start from zero. Only a district admin
(roster ``User_Type`` 4) of that district may make one.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from abacus.errors import PrivacyRequestError

__all__ = [
    "ADMIN_USER_TYPE",
    "MAX_STUDENTS",
    "DeletionRequest",
    "check_requester",
    "new_request_id",
    "parse_request",
    "parse_student_list",
]

ADMIN_USER_TYPE = 4
# One request names at most this many students; a bigger list is several requests.
MAX_STUDENTS = 100_000
_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
# A roster id: printable 7-bit ASCII without the `|` that separates key parts on the topics.
_STUDENT = re.compile(r"^[\x21-\x7b\x7d\x7e]{1,64}$")


def parse_student_list(text: str) -> list[str]:
    """Student ids from a `--students-file` or the portal's text box: one a line (or several
    separated by blanks; commas around one ignored), `#` comments and an optional
    `StudentID` header skipped."""
    out = []
    for line in text.splitlines():
        if line.strip().startswith("#"):
            continue
        for word in line.split():
            value = word.strip(",")
            if value and value.lower() != "studentid":
                out.append(value)
    return out


def new_request_id() -> str:
    return f"del-{uuid.uuid4().hex[:16]}"


class DeletionRequest(BaseModel):
    """One admin's request: delete students, delete a district, or re-enable students."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    request_id: str = Field(pattern=_ID)
    district_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
    requester: str = Field(min_length=1, max_length=64, description="Employee_ID")
    kind: Literal["students", "district", "reenable"]
    students: tuple[str, ...] = ()
    reason: str = Field(default="", max_length=500)

    @model_validator(mode="after")
    def _students_fit_the_kind(self) -> DeletionRequest:
        if self.kind == "district" and self.students:
            raise ValueError("a district deletion names no students")
        if self.kind == "students" and not self.students:
            raise ValueError("name at least one student")
        if len(self.students) > MAX_STUDENTS:
            raise ValueError(f"at most {MAX_STUDENTS} students per request")
        bad = next((s for s in self.students if not _STUDENT.match(s)), None)
        if bad is not None:
            raise ValueError("a student id must be 1-64 printable ASCII characters, no '|'")
        if len(set(self.students)) != len(self.students):
            raise ValueError("a student is named twice")
        return self

    @property
    def whole_district(self) -> bool:
        """A district deletion, or a re-enable of a deleted district (no students named)."""
        return not self.students

    def record(self) -> dict[str, Any]:
        """The JSON document on `privacy-requests` (and in the receipt)."""
        return self.model_dump(mode="json")


def parse_request(payload: bytes) -> DeletionRequest:
    """Decode a request record; a bad one raises PrivacyRequestError with the reason (which
    never repeats a student id)."""
    try:
        doc: Any = json.loads(payload)
        return DeletionRequest.model_validate(doc)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PrivacyRequestError(f"request is not JSON: {exc.__class__.__name__}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"] if not isinstance(p, int)) or "request"
        raise PrivacyRequestError(f"invalid request: {where}: {first['msg']}") from exc


def check_requester(request: DeletionRequest, user_type: int | None) -> None:
    """Only an active district admin of the request's district may delete or re-enable."""
    if user_type is None:
        raise PrivacyRequestError(
            f"requester {request.requester!r} is not an active user of this district"
        )
    if user_type != ADMIN_USER_TYPE:
        raise PrivacyRequestError(
            f"only a district admin (User_Type {ADMIN_USER_TYPE}) may request a deletion"
        )
