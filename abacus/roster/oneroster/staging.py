"""Apply checked files to the stored state (bulk replaces, delta upserts/deletes, absent keeps),
then check references and identities against the result; a row that fails is rejected and
what was stored for its sourcedId stays (pure)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from abacus.roster.oneroster import files as f
from abacus.roster.oneroster.files import Mode
from abacus.roster.oneroster.reader import Row
from abacus.roster.oneroster.state import STORED_COLUMNS, State
from abacus.roster.oneroster.validate import (
    ROSTERED_ROLES,
    TO_BE_DELETED,
    Checked,
    staff_employee_id,
)

__all__ = ["Staged", "identity", "stage"]


def _split(raw: str) -> list[str]:
    """A list column's sourcedIds (already checked to be a well-formed list)."""
    return [item.strip() for item in raw.split(",")]


def identity(sourced_id: str, values: dict[str, str]) -> tuple[str, str] | None:
    """("student", StudentID) or ("staff", Employee_ID) of a stored users row; None if neither."""
    role = values.get("role")
    if role == "student":
        return "student", values.get("identifier", "")
    if role in f.STAFF_ROLES:
        return "staff", staff_employee_id({"sourcedId": sourced_id, **values})[0]
    return None


@dataclass(slots=True)
class Staged:
    state: State
    lines: dict[str, dict[str, int]]  # file -> sourcedId -> line, for rows of this package
    checked: dict[str, Checked]
    active: dict[str, dict[str, Row]] = field(default_factory=dict)


def _project(file: str, row: Row) -> dict[str, str]:
    columns = STORED_COLUMNS[file]
    if file == f.USERS and row.values["role"] not in ROSTERED_ROLES:
        columns = ("role",)  # parents, proctors...: only what a reference check needs
    return {c: row.values[c] for c in columns if row.values.get(c)}


class _Stager:
    def __init__(self, old: State, checked: dict[str, Checked]) -> None:
        self.old = old
        self.checked = checked
        self.new: State = {file: dict(rows) for file, rows in old.items()}
        self.lines: dict[str, dict[str, int]] = defaultdict(dict)
        self.active: dict[str, dict[str, Row]] = defaultdict(dict)

    def apply(self) -> None:
        for file, checked in self.checked.items():
            if not checked.usable or checked.mode is Mode.ABSENT:
                continue
            self.active[file] = {
                sid: row
                for sid, row in checked.rows.items()
                if row.values["status"] != TO_BE_DELETED
            }
            if file not in STORED_COLUMNS:
                continue
            rows = self.new[file]
            if checked.mode is Mode.BULK:
                kept = {sid: rows[sid] for sid in checked.rejected if sid in rows}
                rows.clear()
                rows.update(kept)  # a bad row leaves what was stored for it
            else:
                for sid, row in checked.rows.items():
                    if row.values["status"] == TO_BE_DELETED:
                        rows.pop(sid, None)
            for sid, row in self.active[file].items():
                rows[sid] = _project(file, row)
                self.lines[file][sid] = row.line

    def reject(self, file: str, sid: str, column: str, reason: str) -> None:
        row = self.active[file].pop(sid, None)
        if row is None:
            return
        checked = self.checked[file]
        checked.reject(row, column, reason)
        checked.rejected.add(sid)
        checked.rows.pop(sid, None)
        if file in STORED_COLUMNS:
            self.lines[file].pop(sid, None)
            if sid in self.old[file]:
                self.new[file][sid] = self.old[file][sid]
            else:
                self.new[file].pop(sid, None)

    # --- references --------------------------------------------------------------------

    def _why_missing(self, target: str, sid: str) -> str:
        if sid in self.checked.get(target, Checked(target, Mode.ABSENT)).rejected:
            return f"refers to a rejected row of {target}"
        if self.checked.get(target, Checked(target, Mode.ABSENT)).mode is Mode.BULK:
            return f"not found in {target}"
        return f"not found in {target} nor in earlier uploads"

    def _org(self, file: str, sid: str, column: str, ref: str, *, school: bool) -> bool:
        org = self.new[f.ORGS].get(ref)
        if org is None:
            self.reject(file, sid, column, f"{ref!r} {self._why_missing(f.ORGS, ref)}")
            return False
        if school and org.get("type") != "school":
            self.reject(
                file, sid, column, f"{ref!r} is an org of type {org.get('type')}, not school"
            )
            return False
        return True

    def _in_package(self, target: str) -> set[str] | None:
        """sourcedIds of an unstored file when this package has all of it (bulk), else None."""
        checked = self.checked.get(target)
        if checked is None or checked.mode is not Mode.BULK or not checked.usable:
            return None
        return set(checked.rows) | checked.rejected

    def references(self) -> None:
        orgs, sessions, courses = self.new[f.ORGS], self._in_package(f.ACADEMIC_SESSIONS), None
        for sid, row in list(self.active[f.ORGS].items()):
            parent = row.values["parentSourcedId"]
            if parent and parent not in orgs:
                self.reject(
                    f.ORGS,
                    sid,
                    "parentSourcedId",
                    f"{parent!r} {self._why_missing(f.ORGS, parent)}",
                )
        schools = {s: o["name"] for s, o in orgs.items() if o.get("type") == "school"}
        self._unique(f.ORGS, schools, "name", "another school has this name")
        for sid, row in list(self.active[f.COURSES].items()):
            self._org(f.COURSES, sid, "orgSourcedId", row.values["orgSourcedId"], school=False)
        courses = self._in_package(f.COURSES)
        for sid, row in list(self.active[f.ACADEMIC_SESSIONS].items()):
            parent = row.values["parentSourcedId"]
            if parent and sessions is not None and parent not in sessions:
                self.reject(f.ACADEMIC_SESSIONS, sid, "parentSourcedId", f"{parent!r} not found")
        for sid, row in list(self.active[f.CLASSES].items()):
            v = row.values
            if not self._org(f.CLASSES, sid, "schoolSourcedId", v["schoolSourcedId"], school=True):
                continue
            if courses is not None and v["courseSourcedId"] not in courses:
                self.reject(
                    f.CLASSES,
                    sid,
                    "courseSourcedId",
                    f"{v['courseSourcedId']!r} not found in {f.COURSES}",
                )
                continue
            missing = [
                t for t in _split(v["termSourcedIds"]) if sessions is not None and t not in sessions
            ]
            if missing:
                self.reject(
                    f.CLASSES,
                    sid,
                    "termSourcedIds",
                    f"{missing[0]!r} not found in {f.ACADEMIC_SESSIONS}",
                )
        for sid, row in list(self.active[f.USERS].items()):
            for ref in _split(row.values["orgSourcedIds"]):
                if not self._org(f.USERS, sid, "orgSourcedIds", ref, school=False):
                    break
        self.identities()
        classes, users = self.new[f.CLASSES], self.new[f.USERS]
        for sid, row in list(self.active[f.ENROLLMENTS].items()):
            v = row.values
            if v["classSourcedId"] not in classes:
                why = self._why_missing(f.CLASSES, v["classSourcedId"])
                self.reject(f.ENROLLMENTS, sid, "classSourcedId", f"{v['classSourcedId']!r} {why}")
                continue
            user = users.get(v["userSourcedId"])
            if user is None:
                why = self._why_missing(f.USERS, v["userSourcedId"])
                self.reject(f.ENROLLMENTS, sid, "userSourcedId", f"{v['userSourcedId']!r} {why}")
                continue
            if not self._org(
                f.ENROLLMENTS, sid, "schoolSourcedId", v["schoolSourcedId"], school=True
            ):
                continue
            role = user.get("role", "")
            if (v["role"] == "student") != (role == "student") or (
                v["role"] == "teacher" and role not in f.STAFF_ROLES
            ):
                self.reject(
                    f.ENROLLMENTS,
                    sid,
                    "role",
                    f"enrolled as {v['role']} but the user's role is {role}",
                )
        for sid in list(self.active[f.DEMOGRAPHICS]):
            if sid not in users:
                self.reject(f.DEMOGRAPHICS, sid, "sourcedId", f"{self._why_missing(f.USERS, sid)}")

    # --- identities: the stable sourcedId -> identifier map ------------------------------

    def _unique(self, file: str, values: dict[str, str], column: str, reason: str) -> None:
        """Reject package rows whose value another row already has (stored rows win)."""
        groups: dict[str, list[str]] = defaultdict(list)
        for sid, value in values.items():
            groups[value].append(sid)
        for sids in groups.values():
            if len(sids) < 2:
                continue
            lines = self.lines[file]
            first, *others = sorted(sids, key=lambda s: (s in self.active[file], lines.get(s, 0)))
            for sid in others:
                where = f"line {lines[first]}" if first in lines else "an earlier upload"
                self.reject(file, sid, column, f"{reason} (sourcedId {first!r}, {where})")

    def identities(self) -> None:
        users, old = self.new[f.USERS], self.old[f.USERS]
        for sid in list(self.active[f.USERS]):
            before = identity(sid, old[sid]) if sid in old else None
            now = identity(sid, users[sid])
            if before and now and before[0] == now[0] and before[1] != now[1]:
                column = (
                    "identifier"
                    if now[0] == "student" or users[sid].get("identifier")
                    else "sourcedId"
                )
                self.reject(
                    f.USERS,
                    sid,
                    column,
                    f"this sourcedId was published as {before[1]!r}: an id cannot change"
                    " (delete the user, then add it again)",
                )
        by_kind: dict[str, dict[str, str]] = {"student": {}, "staff": {}}
        for sid, values in users.items():
            if (found := identity(sid, values)) is not None:
                by_kind[found[0]][sid] = found[1]
        for kind, ids in by_kind.items():
            what = "StudentID" if kind == "student" else "Employee_ID"
            self._unique(f.USERS, ids, "identifier", f"another user has this {what}")
        names = {
            sid: v.get("username", "").casefold()
            for sid, v in users.items()
            if v.get("role") in f.STAFF_ROLES
        }
        self._unique(f.USERS, names, "username", "another staff user has this username")


def stage(old: State, checked: dict[str, Checked], files: Iterable[str] = f.READ_FILES) -> Staged:
    """The new state after this package, with every reference and identity checked."""
    stager = _Stager(old, checked)
    for file in files:
        checked.setdefault(file, Checked(file, Mode.ABSENT))
    stager.apply()
    stager.references()
    return Staged(stager.new, dict(stager.lines), checked, dict(stager.active))
