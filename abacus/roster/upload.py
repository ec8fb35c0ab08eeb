"""What one upload of the document's files changes, per kind (pure): the valid records, the
kinds it replaces, the published keys it must leave alone, and the published roster a file
uploaded on its own is checked against."""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from abacus.roster import records as rec
from abacus.roster.records import RosterKind
from abacus.roster.validation import (
    LINKS_FILE,
    ROSTER_FILES,
    STUDENTS_FILE,
    USERS_FILE,
    PublishedIds,
    RosterValidation,
    RowError,
)

__all__ = [
    "Upload",
    "keep",
    "no_cyclic_gc",
    "orphaned_buildings",
    "published_ids",
    "rejected_rows",
    "upload_of",
]


@dataclass(frozen=True, slots=True)
class Upload:
    """Valid fields per kind, keys present-but-rejected, and which kinds it replaces."""

    fields: dict[RosterKind, dict[str, dict[str, Any]]]
    rejected_ids: dict[RosterKind, set[str]]
    complete: dict[RosterKind, bool]
    errors: list[RowError]
    warnings: list[RowError]
    accepted: dict[str, int]
    uploaded: frozenset[str]
    passwords: dict[str, SecretStr | None]  # users' key -> the upload's password (plain)


def _complete(v: RosterValidation) -> dict[RosterKind, bool]:
    """The kinds this upload replaces: its file is in the upload and readable, and so is
    every uploaded file it was checked against (deactivation must never follow from a
    broken or missing file)."""

    def sound(file: str) -> bool:  # not uploaded (the published roster stands in) or usable
        return file not in v.uploaded or v.usable[file]

    return {
        RosterKind.USERS: USERS_FILE in v.uploaded and v.usable[USERS_FILE],
        RosterKind.STUDENTS: STUDENTS_FILE in v.uploaded
        and all(map(sound, (USERS_FILE, STUDENTS_FILE))),
        RosterKind.LINKS: LINKS_FILE in v.uploaded and all(map(sound, ROSTER_FILES)),
    }


def upload_of(district_id: str, v: RosterValidation) -> Upload:
    user_fields = {u.employee_id: rec.user_fields(u) for u in v.users}
    passwords = {
        rec.record_key(district_id, RosterKind.USERS, user_fields[u.employee_id]): u.password
        for u in v.users
    }
    student_fields = {s.student_id: rec.student_fields(s) for s in v.students}
    kinds = {
        RosterKind.USERS: user_fields.values(),
        RosterKind.STUDENTS: student_fields.values(),
        RosterKind.LINKS: [rec.link_fields(link) for link in v.links],
    }
    return Upload(
        fields={
            kind: {rec.record_key(district_id, kind, f): f for f in rows}
            for kind, rows in kinds.items()
        },
        rejected_ids={
            RosterKind.USERS: set(v.rejected_users),
            RosterKind.STUDENTS: set(v.rejected_students),
        },
        complete=_complete(v),
        errors=v.errors,
        warnings=v.warnings,
        accepted={
            USERS_FILE: len(v.users),
            STUDENTS_FILE: len(v.students),
            LINKS_FILE: len(v.links),
        },
        uploaded=v.uploaded,
        passwords=passwords,
    )


def published_ids(docs: Mapping[RosterKind, Mapping[str, Mapping[str, Any]]]) -> PublishedIds:
    """The ids (and whether active) and buildings a file uploaded alone is checked against,
    from the district's published documents per kind."""
    users = docs[RosterKind.USERS].values()
    students = docs[RosterKind.STUDENTS].values()
    buildings = {
        b
        for doc in users
        if doc.get("is_active") is True
        for b in doc.get("buildings") or ()
        if isinstance(b, str)
    }
    return PublishedIds(
        staff={str(d.get("employee_id")): d.get("is_active") is True for d in users},
        students={str(d.get("student_id")): d.get("is_active") is True for d in students},
        buildings=frozenset(buildings),
    )


def orphaned_buildings(
    upload: RosterValidation, students: Mapping[str, Mapping[str, Any]]
) -> list[RowError]:
    """A users file uploaded without students: a warning when published students are in a
    building no staff row names any more (they stay; their next 2_students.csv would not)."""
    if STUDENTS_FILE in upload.uploaded or not upload.usable.get(USERS_FILE):
        return []
    count: dict[str, int] = {}
    for doc in students.values():
        building = doc.get("building")
        active = doc.get("is_active") is True
        if active and isinstance(building, str) and building not in upload.buildings:
            count[building] = count.get(building, 0) + 1
    if not count:
        return []
    names = ", ".join(sorted(count))
    reason = (
        f"warning: {sum(count.values())} published student(s) are in building(s) no row names"
        f" now ({names}); they are kept, but a {STUDENTS_FILE} naming them will be rejected"
    )
    return [RowError(USERS_FILE, 0, "Building_Names", "", reason, True)]


def rejected_rows(errors: Iterable[RowError], file: str) -> int:
    return len({e.line for e in errors if e.file == file})


def keep(kind: RosterKind, current: Iterable[str], upload: Upload, district_id: str) -> set[str]:
    """Published keys whose row is in the upload but was rejected: left as they are."""
    users, students = (
        upload.rejected_ids[RosterKind.USERS],
        upload.rejected_ids[RosterKind.STUDENTS],
    )
    if kind is RosterKind.USERS:
        return {f"{district_id}|{i}" for i in users}
    if kind is RosterKind.STUDENTS:
        return {f"{district_id}|{i}" for i in students}
    out = set()
    for key in current:
        _, employee_id, student_id = rec.key_parts(RosterKind.LINKS, key)
        if employee_id in users or student_id in students:
            out.add(key)
    return out


@contextmanager
def no_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic collector while rows are built: it rescans the growing row dicts
    (which hold no cycles) again and again, 30% of the time at 100k students (measured)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
