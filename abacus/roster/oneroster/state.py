"""What a district's OneRoster uploads add up to, kept on the compacted `roster-oneroster` topic.

Delta files and files marked absent change only part of a roster, so the importer keeps
the rows it needs from every accepted upload: orgs, classes, users (the sourcedId ->
identifier map included) and enrollments, only the columns the mapping reads (no
demographics, passwords, phone numbers). Rows are grouped in buckets by a hash of their
sourcedId — key ``district|file|bucket`` — so a 100k-student district is a few hundred
records, and an upload republishes only the buckets it changed (pure).
"""

from __future__ import annotations

import zlib
from collections.abc import Collection, Mapping
from typing import Any

from abacus.roster.oneroster import files as f

__all__ = [
    "STATE_VERSION",
    "STORED_COLUMNS",
    "State",
    "bucket_records",
    "decode_state",
    "empty_state",
    "state_without_students",
    "without_students",
]

STATE_VERSION = 1
_ROWS_PER_BUCKET = 500

# The columns kept per file (non-blank values only).
STORED_COLUMNS: dict[str, tuple[str, ...]] = {
    f.ORGS: ("name", "type", "parentSourcedId"),
    f.CLASSES: ("schoolSourcedId",),
    f.USERS: (
        "role",
        "orgSourcedIds",
        "username",
        "givenName",
        "familyName",
        "identifier",
        "email",
        "grades",
        "metadata.ell",
        "metadata.iep",
        *(f"metadata.district_data_{n}" for n in range(1, 6)),
    ),
    f.ENROLLMENTS: ("classSourcedId", "userSourcedId", "role"),
}

# file -> sourcedId -> stored column -> value
State = dict[str, dict[str, dict[str, str]]]


def empty_state() -> State:
    return {file: {} for file in STORED_COLUMNS}


def _bucket_count(rows: int) -> int:
    count = 1
    while count * _ROWS_PER_BUCKET < rows:
        count *= 2
    return count


def _bucket(sourced_id: str, count: int) -> int:
    return zlib.crc32(sourced_id.encode()) % count


def bucket_records(district_id: str, state: State) -> dict[str, dict[str, Any]]:
    """Key -> document (``file``, ``buckets``, ``rows``) for every non-empty bucket."""
    out: dict[str, dict[str, Any]] = {}
    for file, rows in state.items():
        count = _bucket_count(len(rows))
        groups: dict[int, dict[str, dict[str, str]]] = {}
        for sourced_id, values in rows.items():
            groups.setdefault(_bucket(sourced_id, count), {})[sourced_id] = values
        for number, group in groups.items():
            key = f"{district_id}|{file}|{number:05d}"
            out[key] = {"file": file, "buckets": count, "rows": group}
    return out


def decode_state(docs: Mapping[str, Mapping[str, Any]]) -> tuple[State, list[str]]:
    """The state from this district's bucket documents, and keys that were not usable."""
    state = empty_state()
    bad: list[str] = []
    for key, doc in docs.items():
        file, rows = doc.get("file"), doc.get("rows")
        if file not in state or not isinstance(rows, dict):
            bad.append(key)
            continue
        for sourced_id, values in rows.items():
            if isinstance(values, dict) and all(isinstance(v, str) for v in values.values()):
                state[file][sourced_id] = values
            else:
                bad.append(key)
    return state, bad


def _student_users(users: Mapping[str, Mapping[str, str]], students: Collection[str]) -> set[str]:
    """The sourcedIds of users with role student whose identifier is one of ``students``."""
    return {
        sourced_id
        for sourced_id, values in users.items()
        if values.get("role") == "student" and values.get("identifier") in students
    }


def _kept(file: str, rows: Mapping[str, Any], gone: Collection[str]) -> dict[str, Any]:
    """A file's rows without the users ``gone`` (users rows) or their enrollments."""
    if file == f.USERS:
        return {s: v for s, v in rows.items() if s not in gone}
    if file == f.ENROLLMENTS:
        return {s: v for s, v in rows.items() if v.get("userSourcedId") not in gone}
    return dict(rows)


def state_without_students(state: State, students: Collection[str]) -> State:
    """The state without these students' users rows and enrollments (an upload's state
    before it is published, when some of its students are deleted: `abacus.roster.denied`)."""
    if not students:
        return state
    gone = _student_users(state[f.USERS], students)
    return {file: _kept(file, rows, gone) for file, rows in state.items()}


def without_students(
    docs: Mapping[str, Mapping[str, Any]], students: Collection[str]
) -> dict[str, dict[str, Any] | None]:
    """The bucket documents (key -> ``file``/``buckets``/``rows``) that hold these students
    (users with role student whose identifier is one of them) or their enrollments,
    rewritten without those rows; None for a bucket left empty (its tombstone). A deletion
    rewrites these buckets: a tombstone per key would drop every other user in them."""
    gone: set[str] = set()
    for doc in docs.values():
        if doc.get("file") == f.USERS:
            gone |= _student_users(dict(doc.get("rows") or {}), students)
    out: dict[str, dict[str, Any] | None] = {}
    for key, doc in docs.items():
        file, rows = doc.get("file"), dict(doc.get("rows") or {})
        if file not in (f.USERS, f.ENROLLMENTS):
            continue
        kept = _kept(str(file), rows, gone)
        if len(kept) != len(rows):
            out[key] = {**doc, "rows": kept} if kept else None
    return out
