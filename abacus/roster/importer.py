"""`abacus roster import`: read a roster folder, validate, diff against the topics, publish."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from abacus.district import ConfigError, DistrictConfig, load_district_config
from abacus.roster import records as rec
from abacus.roster.diff import RosterDiff
from abacus.roster.publishing import Publication, Published, read_published
from abacus.roster.records import RosterKind
from abacus.roster.report import write_error_report
from abacus.roster.validation import (
    LINKS_FILE,
    STUDENTS_FILE,
    USERS_FILE,
    RowError,
    read_roster_dir,
    validate_roster,
)
from abacus.settings import AbacusSettings

__all__ = [
    "CONFIG_FILE",
    "REPORT_FILE",
    "FileSummary",
    "ImportResult",
    "import_roster",
    "load_config",
    "require_config",
    "write_report",
]

CONFIG_FILE = "district.toml"
REPORT_FILE = "roster_errors.csv"
_DISTRICT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


@dataclass(frozen=True, slots=True)
class FileSummary:
    file: str
    accepted: int
    rejected: int
    diff: RosterDiff | None = None  # None: nothing was published (--strict)

    def line(self) -> str:
        head = f"{self.file}: {self.accepted} accepted, {self.rejected} rejected"
        if self.diff is None:
            return f"{head} (nothing imported: --strict)"
        d = self.diff
        return (
            f"{head}, {d.unchanged} unchanged, {d.updated} updated, {d.new} new,"
            f" {d.deactivated} deactivated"
        )


@dataclass(slots=True)
class ImportResult:
    district_id: str
    errors: list[RowError]
    report_path: Path | None
    summaries: list[FileSummary] = field(default_factory=list)
    config_status: str = ""  # "new" / "updated" / "unchanged" / "" when nothing published
    published: int = 0
    notes: list[str] = field(default_factory=list)  # lines printed before the summaries

    @property
    def rejected(self) -> int:
        """Rows with at least one error (a whole-file error counts once)."""
        return len({(e.file, e.line) for e in self.errors})

    @property
    def imported(self) -> bool:
        return all(s.diff is not None for s in self.summaries)


@dataclass(frozen=True, slots=True)
class _Upload:
    """Valid fields per kind, keys present-but-rejected, and which files are complete."""

    fields: dict[RosterKind, dict[str, dict[str, Any]]]
    rejected_ids: dict[RosterKind, set[str]]
    complete: dict[RosterKind, bool]
    errors: list[RowError]
    accepted: dict[str, int]
    passwords: dict[str, SecretStr | None]  # users' key -> the upload's password (plain)


def _validate(district_id: str, directory: Path, today: date | None) -> _Upload:
    v = validate_roster(read_roster_dir(directory), today=today)
    usable = v.usable
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
    return _Upload(
        fields={
            kind: {rec.record_key(district_id, kind, f): f for f in rows}
            for kind, rows in kinds.items()
        },
        rejected_ids={
            RosterKind.USERS: set(v.rejected_users),
            RosterKind.STUDENTS: set(v.rejected_students),
        },
        # Deactivation must not follow from a broken or missing file.
        complete={
            RosterKind.USERS: usable[USERS_FILE],
            RosterKind.STUDENTS: usable[USERS_FILE] and usable[STUDENTS_FILE],
            RosterKind.LINKS: all(usable[f] for f in (USERS_FILE, STUDENTS_FILE, LINKS_FILE)),
        },
        errors=v.errors,
        accepted={
            USERS_FILE: len(v.users),
            STUDENTS_FILE: len(v.students),
            LINKS_FILE: len(v.links),
        },
        passwords=passwords,
    )


def _rejected_rows(errors: Iterable[RowError], file: str) -> int:
    return len({e.line for e in errors if e.file == file})


def _keep(kind: RosterKind, current: Iterable[str], upload: _Upload, district_id: str) -> set[str]:
    """Published keys whose row is in the upload but was rejected: left as they are."""
    users, students = (
        upload.rejected_ids[RosterKind.USERS],
        upload.rejected_ids[RosterKind.STUDENTS],
    )
    if kind is RosterKind.USERS:
        return {f"{district_id}|{i}" for i in users}
    if kind is RosterKind.STUDENTS:
        return {f"{district_id}|{i}" for i in students}
    parts = (key.split("|") for key in current)
    return {"|".join(p) for p in parts if len(p) == 3 and (p[1] in users or p[2] in students)}


def load_config(
    directory: Path, district_id: str, config_path: Path | None
) -> DistrictConfig | None:
    if not _DISTRICT_ID_RE.match(district_id):
        raise ConfigError(f"--district {district_id!r}: use letters, digits, '-' or '_'")
    path = config_path or directory / CONFIG_FILE
    if config_path is None and not path.is_file():
        return None  # the district's published config is used, if there is one
    return load_district_config(path, district_id=district_id)


def write_report(folder: Path, errors: list[RowError]) -> Path | None:
    """Write the upload's errors to ``folder/roster_errors.csv``, or remove a stale report
    (it would describe an older upload); return the report's path when there is one."""
    report = folder / REPORT_FILE
    if not errors:
        report.unlink(missing_ok=True)
        return None
    write_error_report(errors, report)
    return report


def require_config(config: DistrictConfig | None, published: Published, folder: Path) -> None:
    """ConfigError unless this import brings a district config or one was published."""
    if config is None and published.config is None:
        raise ConfigError(
            f"no district config for {published.district_id!r}: pass --config FILE or put"
            f" {CONFIG_FILE} in {folder} (required the first time a district is imported)"
        )


def import_roster(
    settings: AbacusSettings,
    directory: Path,
    district_id: str,
    *,
    config_path: Path | None = None,
    strict: bool = False,
    today: date | None = None,
) -> ImportResult:
    """Validate the folder's three files; unless `strict` stops it, publish what changed.

    Raises ConfigError (bad or missing district config) and StackError (broker trouble).
    """
    config = load_config(directory, district_id, config_path)
    upload = _validate(district_id, directory, today)
    result = ImportResult(district_id, upload.errors, write_report(directory, upload.errors))
    files = {USERS_FILE: RosterKind.USERS, STUDENTS_FILE: RosterKind.STUDENTS}
    files[LINKS_FILE] = RosterKind.LINKS
    if strict and upload.errors:
        result.summaries = [
            FileSummary(f, upload.accepted[f], _rejected_rows(upload.errors, f)) for f in files
        ]
        return result

    published = read_published(settings, district_id)
    require_config(config, published, directory)
    out = Publication(published)
    result.config_status = out.config(config)
    for file, kind in files.items():
        diff = out.changes(
            kind,
            upload.fields[kind],
            complete=upload.complete[kind],
            keep=_keep(kind, published.docs[kind], upload, district_id),
            passwords=upload.passwords if kind is RosterKind.USERS else None,
        )
        rejected = _rejected_rows(upload.errors, file)
        result.summaries.append(FileSummary(file, upload.accepted[file], rejected, diff))
    result.published = out.send(settings)
    return result
