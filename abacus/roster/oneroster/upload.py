"""One OneRoster upload, end to end and pure: manifest -> rows -> state -> records to diff.

What may be deactivated follows the manifest: a bulk users.csv (enrollments.csv for links)
is the whole roster, so any published record it does not produce is deactivated, as with
the upload document's files; otherwise only records the stored state produced before and
no longer produces (a delta `tobedeleted`, or a row gone from a bulk orgs/classes file)
are. A record whose row was rejected, or that can no longer be mapped, is left as it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from abacus.roster import records as rec
from abacus.roster.oneroster import files as f
from abacus.roster.oneroster.files import Mode
from abacus.roster.oneroster.manifest import Manifest
from abacus.roster.oneroster.mapping import Mapped, map_state
from abacus.roster.oneroster.reader import read_table
from abacus.roster.oneroster.staging import Staged, stage
from abacus.roster.oneroster.state import State
from abacus.roster.oneroster.validate import TO_BE_DELETED, Checked, check_table
from abacus.roster.records import RosterKind
from abacus.roster.upload import no_cyclic_gc
from abacus.roster.validation import RowError

__all__ = ["KIND_LABELS", "OneRosterUpload", "build_upload", "no_cyclic_gc"]

KIND_LABELS = {
    RosterKind.USERS: f"{f.USERS}: staff",
    RosterKind.STUDENTS: f"{f.USERS}: students",
    RosterKind.LINKS: f"{f.ENROLLMENTS}: teacher-student links",
}
USERS, STUDENTS, LINKS = RosterKind.USERS, RosterKind.STUDENTS, RosterKind.LINKS
_KIND_OF_ROLE = {"student": RosterKind.STUDENTS, **dict.fromkeys(f.STAFF_ROLES, RosterKind.USERS)}


@dataclass(slots=True)
class OneRosterUpload:
    district_id: str
    errors: list[RowError]
    state: State  # after this upload
    fields: dict[RosterKind, dict[str, dict[str, Any]]]  # key -> record fields
    deactivatable: dict[RosterKind, set[str] | None]  # None: every published key
    failed: dict[str, set[str]]  # "staff"/"student" -> ids whose stored row cannot be mapped
    accepted: dict[RosterKind, int] = field(default_factory=dict)
    rejected: dict[RosterKind, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def keep(self, kind: RosterKind, current: Mapping[str, Any]) -> set[str]:
        """Published keys `diff_records` must not deactivate: out of this upload's scope, or
        whose user cannot be mapped now (their links included)."""
        scope = self.deactivatable[kind]
        staff, students = self.failed["staff"], self.failed["student"]

        def unmappable(parts: tuple[str, ...]) -> bool:
            if kind is RosterKind.LINKS:
                return parts[1] in staff or parts[2] in students
            return parts[1] in (staff if kind is RosterKind.USERS else students)

        out = set()
        for key in current:
            if key in self.fields[kind]:
                continue
            if (scope is not None and key not in scope) or unmappable(rec.key_parts(kind, key)):
                out.add(key)
        return out


def _fields(district_id: str, mapped: Mapped) -> dict[RosterKind, dict[str, dict[str, Any]]]:
    users = {
        e: {**rec.user_fields(u), "sourced_id": mapped.sourced_ids["staff", e]}
        for e, u in mapped.users.items()
    }
    students = {
        s: {**rec.student_fields(st), "sourced_id": mapped.sourced_ids["student", s]}
        for s, st in mapped.students.items()
    }
    out = {
        RosterKind.USERS: users.values(),
        RosterKind.STUDENTS: students.values(),
        RosterKind.LINKS: [rec.link_fields(link) for link in mapped.links],
    }
    return {
        kind: {rec.record_key(district_id, kind, fields): fields for fields in rows}
        for kind, rows in out.items()
    }


def _read(
    manifest: Manifest,
    files: Mapping[str, bytes],
    present: frozenset[str],
    today: date,
    max_rows: int | None,
) -> tuple[dict[str, Checked], list[RowError]]:
    checked: dict[str, Checked] = {}
    errors: list[RowError] = []
    for name, mode in manifest.modes.items():
        if name in present and mode is Mode.ABSENT and manifest.usable:
            reason = "in the package but manifest.csv says absent: not read"
            errors.append(RowError(name, 0, "", "", reason))
    for name, mode in manifest.read.items():
        if mode is Mode.ABSENT:
            continue
        if name not in files:
            reason = f"file is missing (manifest.csv says {mode})"
            checked[name] = Checked(name, mode, errors=[RowError(name, 0, "", "", reason)])
            checked[name].usable = False
            continue
        table = read_table(f.SPECS[name], files[name], max_rows=max_rows)
        checked[name] = check_table(table, mode, today=today)
    return checked, errors


def _counts(upload: OneRosterUpload, staged: Staged, mapped: Mapped, old: State) -> None:
    users = staged.checked[f.USERS]
    bad = {e.line for e in (*users.errors, *mapped.errors) if e.line > 0}
    roles = dict(users.roles)
    for sid, row in users.rows.items():  # a tobedeleted row may leave its role blank
        roles[row.line] = row.values["role"] or old[f.USERS].get(sid, {}).get("role", "")
    for kind, name in ((RosterKind.USERS, "staff"), (RosterKind.STUDENTS, "student")):
        mine = {line for line, role in roles.items() if _KIND_OF_ROLE.get(role) is kind}
        accepted = {users.rows[sid].line for sid in users.rows} & mine
        upload.accepted[kind] = len(accepted - bad)
        upload.rejected[kind] = len(mine & bad) + mapped.stored_failures[name]
    enrollments = staged.checked[f.ENROLLMENTS]
    upload.accepted[RosterKind.LINKS] = len(enrollments.rows)
    upload.rejected[RosterKind.LINKS] = enrollments.rejected_lines


def _notes(manifest: Manifest, staged: Staged, old: State) -> list[str]:
    modes = ", ".join(f"{name.removesuffix('.csv')} {m}" for name, m in manifest.read.items())
    notes = [f"{f.MANIFEST}: OneRoster 1.1; {modes}"] if manifest.usable else []
    for name, mode in manifest.read.items():
        checked = staged.checked[name]
        if mode is Mode.ABSENT:
            if name in old:
                notes.append(f"{name}: absent ({len(old[name])} stored row(s) kept)")
            continue
        deleted = sum(1 for r in checked.rows.values() if r.values["status"] == TO_BE_DELETED)
        line = f"{name} ({mode}): {len(checked.rows)} accepted, {checked.rejected_lines} rejected"
        if deleted:
            line += f", {deleted} tobedeleted"
        if checked.skipped_roles:
            line += f", {checked.skipped_roles} not rostered (guardian/parent/relative/proctor)"
        notes.append(line)
    return notes


@no_cyclic_gc()
def build_upload(
    district_id: str,
    manifest: Manifest,
    files: Mapping[str, bytes],
    present: frozenset[str],
    old: State,
    *,
    today: date,
    max_rows: int | None = None,
) -> OneRosterUpload:
    """Everything an import publishes, from the package and the district's stored state
    (RosterInputError for a file over `max_rows` rows)."""
    checked, errors = _read(manifest, files, present, today, max_rows)
    staged = stage(old, checked)
    mapped = map_state(staged.state, staged.lines.get(f.USERS, {}))
    fields = _fields(district_id, mapped)
    whole = {
        kind: checked[file].mode is Mode.BULK and checked[file].usable
        for kind, file in ((USERS, f.USERS), (STUDENTS, f.USERS), (LINKS, f.ENROLLMENTS))
    }
    # Outside a bulk file's scope, only what the stored state produced may be deactivated.
    before = _fields(district_id, map_state(old)) if not all(whole.values()) else {}
    deactivatable: dict[RosterKind, set[str] | None] = {
        kind: None if whole[kind] else set(before[kind]) for kind in whole
    }
    all_errors = [*manifest.errors, *errors]
    for name in f.READ_FILES:
        all_errors += staged.checked[name].errors
    all_errors += mapped.errors
    upload = OneRosterUpload(
        district_id, all_errors, staged.state, fields, deactivatable, mapped.failed
    )
    _counts(upload, staged, mapped, old)
    upload.notes = _notes(manifest, staged, old)
    return upload
