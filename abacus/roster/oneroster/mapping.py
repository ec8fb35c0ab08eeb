"""A district's OneRoster state -> the roster records the upload-document path produces (pure).

| OneRoster | roster record |
|---|---|
| users role teacher/aide | User, User_Type 1 (teacher) |
| users role administrator | User, 3 (district) with an org of type district, else 2 (building) |
| users role student | Student: StudentID = identifier, grade from grades (CEDS) |
| identifier (staff) | Employee_ID; sourcedId when identifier is blank |
| school orgs of orgSourcedIds + schools of their classes | Building_Names (staff) |
| school of the student's classes (classes.schoolSourcedId) | Building_Name (student) |
| teacher and student enrollments of one class | teacher-student links |
| metadata.ell / metadata.iep | ELL / SPED (else False) |
| username, sourcedId, metadata.district_data_N | District_Data_1, _2, _N |
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from abacus.district import DISTRICT_DATA_COLUMNS
from abacus.roster.oneroster import files as f
from abacus.roster.oneroster.checks import YES_NO, FieldError, student_grade
from abacus.roster.oneroster.staging import identity
from abacus.roster.oneroster.state import State
from abacus.roster.oneroster.validate import DISTRICT_DATA_META, ELL_META, IEP_META
from abacus.roster.validation import (
    RowError,
    Student,
    TeacherStudentLink,
    User,
    UserType,
)

__all__ = ["Mapped", "map_state"]


@dataclass(slots=True)
class Mapped:
    users: dict[str, User] = field(default_factory=dict)  # Employee_ID -> user
    students: dict[str, Student] = field(default_factory=dict)  # StudentID -> student
    links: list[TeacherStudentLink] = field(default_factory=list)
    sourced_ids: dict[tuple[str, str], str] = field(default_factory=dict)  # (kind, id) -> sid
    errors: list[RowError] = field(default_factory=list)
    failed: dict[str, set[str]] = field(default_factory=lambda: {"staff": set(), "student": set()})
    stored_failures: dict[str, int] = field(default_factory=lambda: {"staff": 0, "student": 0})


def _ids(raw: str) -> list[str]:
    return [item.strip() for item in raw.split(",") if item.strip()]


class _Mapper:
    def __init__(self, state: State, lines: dict[str, int]) -> None:
        self.orgs = state[f.ORGS]
        self.class_school = {
            sid: row.get("schoolSourcedId", "") for sid, row in state[f.CLASSES].items()
        }
        self.users = state[f.USERS]
        self.lines = lines
        self.by_user: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for enrollment in state[f.ENROLLMENTS].values():
            user, klass = enrollment.get("userSourcedId", ""), enrollment.get("classSourcedId", "")
            if klass in self.class_school:
                self.by_user[user].append((klass, enrollment.get("role", "")))
        self.out = Mapped()

    def school_name(self, org_id: str) -> str | None:
        org = self.orgs.get(org_id)
        if org is not None and org.get("type") == "department":
            org = self.orgs.get(org.get("parentSourcedId", ""))  # a department's school
        return org.get("name") if org is not None and org.get("type") == "school" else None

    def _schools(self, sid: str, values: dict[str, str], role: str) -> tuple[list[str], list[str]]:
        """(schools of the user's orgSourcedIds, schools of the classes they are enrolled in)."""
        orgs = [self.school_name(o) for o in _ids(values.get("orgSourcedIds", ""))]
        classes = [
            self.school_name(self.class_school[k]) for k, r in self.by_user[sid] if r == role
        ]
        return (
            list(dict.fromkeys(s for s in orgs if s)),
            list(dict.fromkeys(s for s in classes if s)),
        )

    def error(self, sid: str, column: str, value: str, reason: str) -> None:
        line = self.lines.get(sid, 0)
        if not line:
            column, value = "sourcedId", sid
            reason += " (row stored from an earlier upload)"
        self.out.errors.append(RowError(f.USERS, line, column, value, reason))

    def student(self, sid: str, v: dict[str, str]) -> None:
        student_id = v["identifier"]
        orgs, classes = self._schools(sid, v, "student")
        if len(classes) == 1:
            building = classes[0]
        elif classes:
            building = next((s for s in orgs if s in classes), "")
            if not building:
                reason = f"classes at several schools ({'; '.join(classes)}), none in orgSourcedIds"
                self.fail("student", student_id, sid, "orgSourcedIds", reason)
                return
        elif orgs:
            building = orgs[0]
        else:
            reason = "no school: no class at a school and no school in orgSourcedIds"
            self.fail("student", student_id, sid, "orgSourcedIds", reason)
            return
        data = {DISTRICT_DATA_COLUMNS[0]: v.get("username", ""), DISTRICT_DATA_COLUMNS[1]: sid}
        for column, meta in zip(DISTRICT_DATA_COLUMNS, DISTRICT_DATA_META, strict=True):
            if v.get(meta):
                data[column] = v[meta]
        self.out.students[student_id] = Student(
            student_id=student_id,
            date_of_birth=None,  # demographics are validated, never kept
            last_name=v.get("familyName", ""),
            first_name=v.get("givenName", ""),
            grade=student_grade(v.get("grades", "")),
            building=building,
            gender="",
            is_iep=YES_NO.get(v.get(IEP_META, "").casefold(), False),
            is_ell=YES_NO.get(v.get(ELL_META, "").casefold(), False),
            ethnicity="",
            race="",
            district_data={k: d for k, d in data.items() if d},
            line=self.lines.get(sid, 0),
        )
        self.out.sourced_ids["student", student_id] = sid

    def staff(self, sid: str, v: dict[str, str], employee_id: str) -> None:
        orgs, classes = self._schools(sid, v, "teacher")
        buildings = tuple(dict.fromkeys([*orgs, *classes]))
        if v["role"] == "administrator":
            types = {self.orgs.get(o, {}).get("type") for o in _ids(v.get("orgSourcedIds", ""))}
            user_type = UserType.DISTRICT if "district" in types else UserType.BUILDING
            if user_type is UserType.BUILDING and not orgs:
                reason = "an administrator needs a school or district org in orgSourcedIds"
                self.fail("staff", employee_id, sid, "orgSourcedIds", reason)
                return
        else:
            user_type = UserType.TEACHER
            if not buildings:
                reason = "no school: no school in orgSourcedIds and no class at a school"
                self.fail("staff", employee_id, sid, "orgSourcedIds", reason)
                return
        self.out.users[employee_id] = User(
            employee_id=employee_id,
            username=v.get("username", ""),
            email=v.get("email"),
            password=None,  # OneRoster passwords are never kept (reset links instead)
            first_name=v.get("givenName", ""),
            last_name=v.get("familyName"),
            buildings=buildings,
            user_type=user_type,
            line=self.lines.get(sid, 0),
        )
        self.out.sourced_ids["staff", employee_id] = sid

    def fail(self, kind: str, ident: str, sid: str, column: str, reason: str) -> None:
        self.out.failed[kind].add(ident)
        if sid not in self.lines:
            self.out.stored_failures[kind] += 1
        self.error(sid, column, self.users[sid].get(column, ""), reason)

    def links(self) -> None:
        teachers: dict[str, list[str]] = defaultdict(list)
        students: dict[str, list[str]] = defaultdict(list)
        for sid, enrolled in self.by_user.items():
            ident = identity(sid, self.users[sid]) if sid in self.users else None
            if ident is None:
                continue
            kind, key = ident
            if kind == "student" and key in self.out.students:
                for klass, role in enrolled:
                    if role == "student":
                        students[klass].append(key)
            elif kind == "staff" and key in self.out.users:
                for klass, role in enrolled:
                    if role == "teacher":
                        teachers[klass].append(key)
        pairs = {
            (t, s) for klass, ts in teachers.items() for t in ts for s in students.get(klass, ())
        }
        self.out.links = [TeacherStudentLink(t, s, 0) for t, s in sorted(pairs)]


def map_state(state: State, lines: dict[str, int] | None = None) -> Mapped:
    """Records of every rostered user in `state`; `lines` places errors on this upload's rows."""
    mapper = _Mapper(state, lines or {})
    for sid, values in mapper.users.items():
        ident = identity(sid, values)
        if ident is None:
            continue  # parents, guardians, relatives, proctors: not rostered
        try:
            if ident[0] == "student":
                mapper.student(sid, values)
            else:
                mapper.staff(sid, values, ident[1])
        except FieldError as exc:  # a stored row no longer valid: cannot happen, be safe
            mapper.fail(ident[0], ident[1], sid, "sourcedId", str(exc))
    mapper.links()
    return mapper.out
