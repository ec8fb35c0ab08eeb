"""Row checks of one OneRoster file: status for its mode, required values, enums, dates (pure).

References between files are checked later, against what is stored plus this package
(`staging`), because a delta file may point at rows sent in an earlier upload.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date

from abacus.roster.oneroster import checks as c
from abacus.roster.oneroster import files as f
from abacus.roster.oneroster.files import Mode
from abacus.roster.oneroster.reader import Row, Table
from abacus.roster.validation import RowError

__all__ = [
    "DISTRICT_DATA_META",
    "ELL_META",
    "IEP_META",
    "ROSTERED_ROLES",
    "TO_BE_DELETED",
    "Checked",
    "check_table",
    "staff_employee_id",
]

ELL_META = "metadata.ell"
IEP_META = "metadata.iep"
DISTRICT_DATA_META = tuple(f"metadata.district_data_{n}" for n in range(1, 6))
_META_CHECKS: dict[str, c.Check] = {
    ELL_META: c.yes_no,
    IEP_META: c.yes_no,
    **dict.fromkeys(DISTRICT_DATA_META, c.text),
}
ACTIVE, TO_BE_DELETED = "active", "tobedeleted"
ROSTERED_ROLES = f.STAFF_ROLES | {"student"}


@dataclass(slots=True)
class Checked:
    """One file after its row checks: the good rows by sourcedId, and what was wrong."""

    file: str
    mode: Mode
    rows: dict[str, Row] = field(default_factory=dict)  # tobedeleted rows included (delta)
    rejected: set[str] = field(default_factory=set)  # sourcedIds of rows present but bad
    errors: list[RowError] = field(default_factory=list)
    usable: bool = True
    skipped_roles: int = 0  # users.csv: rows of roles that are not rostered (parents...)
    roles: dict[int, str] = field(default_factory=dict)  # users.csv: line -> role as written

    def reject(self, row: Row, column: str, reason: str) -> None:
        raw = row.values.get(column, "")
        self.errors.append(
            RowError(self.file, row.line, column, c.shown(self.file, column, raw), reason)
        )

    @property
    def rejected_lines(self) -> int:
        return len({e.line for e in self.errors if e.line > 0})


def staff_employee_id(values: dict[str, str]) -> tuple[str, str]:
    """(Employee_ID, the column it came from): `identifier`, else `sourcedId`."""
    if values.get("identifier"):
        return values["identifier"], "identifier"
    return values["sourcedId"], "sourcedId"


def _status(checked: Checked, row: Row) -> bool:
    status, modified = row.values["status"], row.values["dateLastModified"]
    ok = True
    if checked.mode is Mode.BULK:
        for column, value in (("status", status), ("dateLastModified", modified)):
            if value:
                checked.reject(row, column, "must be blank in a bulk file")
                ok = False
        return ok
    if status not in (ACTIVE, TO_BE_DELETED):
        reason = "required in a delta file" if not status else "must be active or tobedeleted"
        checked.reject(row, "status", reason)
        ok = False
    if not modified:
        checked.reject(row, "dateLastModified", "required in a delta file")
        return False
    try:
        c.check_date_time(modified)
    except c.FieldError as exc:
        checked.reject(row, "dateLastModified", str(exc))
        return False
    return ok


def _plan(file: str, columns: Iterable[str]) -> list[tuple[str, bool, c.Check | None]]:
    """(column, value required, check) for each column of a header, status columns aside."""
    spec, checks = f.SPECS[file], c.COLUMN_CHECKS[file]
    meta = _META_CHECKS if file == f.USERS else {}
    return [
        (column, column in spec.required, checks.get(column) or meta.get(column))
        for column in columns
        if column not in ("status", "dateLastModified")
    ]


def _values(checked: Checked, row: Row, plan: list[tuple[str, bool, c.Check | None]]) -> bool:
    ok = True
    values = row.values
    for column, required, check in plan:
        raw = values[column]
        if not raw:
            if required:
                checked.reject(row, column, "required value is blank")
                ok = False
        elif check is not None:  # other metadata.* columns are allowed and not read
            try:
                check(raw)
            except c.FieldError as exc:
                checked.reject(row, column, str(exc))
                ok = False
    return ok


def _check(
    check: Callable[[str], object], column: str, raw: str, errors: list[tuple[str, str]]
) -> None:
    try:
        check(raw)
    except c.FieldError as exc:
        errors.append((column, str(exc)))


def _row_rules(checked: Checked, row: Row, today: date) -> bool:
    """Rules across the columns of one row (only once every value passed its own check)."""
    v = row.values
    rule_errors: list[tuple[str, str]] = []
    if checked.file == f.USERS:
        if v["role"] == "student":
            for check, column, missing in (
                (c.student_id, "identifier", "required for students (the student number)"),
                (c.student_grade, "grades", "required for students"),
            ):
                if v[column]:
                    _check(check, column, v[column], rule_errors)
                else:
                    rule_errors.append((column, missing))
        elif v["role"] in f.STAFF_ROLES:
            employee_id, column = staff_employee_id(v)
            _check(c.staff_id, column, employee_id, rule_errors)
            _check(c.staff_username, "username", v["username"], rule_errors)
    elif checked.file in (f.ACADEMIC_SESSIONS, f.ENROLLMENTS):
        start, end = (
            ("startDate", "endDate")
            if checked.file == f.ACADEMIC_SESSIONS
            else ("beginDate", "endDate")
        )
        if v[start] and v[end] and v[end] < v[start]:
            rule_errors.append((end, f"before {start}"))
    elif checked.file == f.DEMOGRAPHICS and v["birthDate"] and v["birthDate"] > today.isoformat():
        rule_errors.append(("birthDate", "date is in the future"))
    for column, reason in rule_errors:
        checked.reject(row, column, reason)
    return not rule_errors


def check_table(table: Table, mode: Mode, *, today: date) -> Checked:
    """Check every row of a file read in `mode` (bulk or delta)."""
    checked = Checked(table.name, mode, errors=list(table.errors), usable=table.usable)
    if not table.usable:
        return checked
    first: dict[str, int] = {}
    plan = _plan(table.name, table.rows[0].values if table.rows else ())
    for row in table.rows:
        sourced_id = row.values["sourcedId"]
        if checked.file == f.USERS:
            checked.roles[row.line] = row.values["role"]
        ok = _status(checked, row)
        deleting = checked.mode is Mode.DELTA and row.values["status"] == TO_BE_DELETED
        if deleting:  # only the key matters: the row's other values are not read
            if not sourced_id:
                checked.reject(row, "sourcedId", "required value is blank")
                ok = False
        else:
            ok = _values(checked, row, plan) and ok
            ok = ok and _row_rules(checked, row, today)
        if sourced_id in first:
            checked.reject(
                row, "sourcedId", f"duplicate sourcedId (first at line {first[sourced_id]})"
            )
            continue
        if sourced_id:
            first[sourced_id] = row.line
        if not ok:
            if sourced_id:
                checked.rejected.add(sourced_id)
            continue
        if checked.file == f.USERS and not deleting and row.values["role"] not in ROSTERED_ROLES:
            checked.skipped_roles += 1  # kept (enrollments may name them), never rostered
        checked.rows[sourced_id] = row
    return checked
