"""`abacus roster import`: read a roster folder, validate, diff against the topics, publish."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from abacus.district import ConfigError, DistrictConfig, load_district_config
from abacus.kafka.broker_epoch import wait_restored
from abacus.kafka.compacted import publish, read_latest
from abacus.kafka.topics import ensure_topics
from abacus.roster import records as rec
from abacus.roster.diff import RosterDiff, diff_records
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

__all__ = ["CONFIG_FILE", "REPORT_FILE", "FileSummary", "ImportResult", "import_roster"]

log = logging.getLogger(__name__)

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

    @property
    def rejected(self) -> int:
        return sum(s.rejected for s in self.summaries)

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


def _validate(district_id: str, directory: Path, today: date | None) -> _Upload:
    v = validate_roster(read_roster_dir(directory), today=today)
    usable = v.usable
    user_fields = {u.employee_id: rec.user_fields(u) for u in v.users}
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


def _current(raw: Mapping[bytes, bytes | None], district_id: str) -> dict[str, dict[str, Any]]:
    """This district's last document per key (other districts' keys are never looked at)."""
    prefix = f"{district_id}|".encode()
    out = {}
    for key, value in raw.items():
        if key.startswith(prefix) or key == district_id.encode():
            try:
                doc = rec.decode_value(value)
            except rec.BadRecordError as exc:
                log.warning("ignoring a bad record on a roster topic: %s", exc)
                continue
            out[key.decode()] = doc
    return out


def _load_config(
    directory: Path, district_id: str, config_path: Path | None
) -> DistrictConfig | None:
    if not _DISTRICT_ID_RE.match(district_id):
        raise ConfigError(f"--district {district_id!r}: use letters, digits, '-' or '_'")
    path = config_path or directory / CONFIG_FILE
    if config_path is None and not path.is_file():
        return None  # the district's published config is used, if there is one
    return load_district_config(path, district_id=district_id)


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
    config = _load_config(directory, district_id, config_path)
    upload = _validate(district_id, directory, today)
    report = directory / REPORT_FILE
    if upload.errors:
        write_error_report(upload.errors, report)
    else:
        report.unlink(missing_ok=True)  # a stale report would describe an older upload
    result = ImportResult(district_id, upload.errors, report if upload.errors else None)
    files = {USERS_FILE: RosterKind.USERS, STUDENTS_FILE: RosterKind.STUDENTS}
    files[LINKS_FILE] = RosterKind.LINKS
    if strict and upload.errors:
        result.summaries = [
            FileSummary(f, upload.accepted[f], _rejected_rows(upload.errors, f)) for f in files
        ]
        return result

    t = settings.topics
    topic = {
        RosterKind.USERS: t.name(t.roster_users),
        RosterKind.STUDENTS: t.name(t.roster_students),
        RosterKind.LINKS: t.name(t.roster_links),
        RosterKind.DISTRICT: t.name(t.district_config),
    }
    ensure_topics(settings)
    # After an embedded broker restart the worker first puts the roster back on these
    # topics from ClickHouse; reading them before that would deactivate nothing.
    wait_restored(settings)
    state = read_latest(settings, list(topic.values()))
    current = {kind: _current(state[name], district_id) for kind, name in topic.items()}
    published_config = current[RosterKind.DISTRICT].get(district_id)
    if config is None and published_config is None:
        raise ConfigError(
            f"no district config for {district_id!r}: pass --config FILE or put {CONFIG_FILE}"
            f" in {directory} (required the first time a district is imported)"
        )
    last = max(
        (doc.get("imported_at", 0) for docs in current.values() for doc in docs.values()), default=0
    )
    imported_at = max(time.time_ns() // 1_000_000, last + 1)  # versions only ever rise
    import_id = uuid.uuid4().hex[:16]

    out: list[tuple[str, bytes, bytes]] = []
    if config is not None:
        new_config = config.model_dump(mode="json")
        if published_config is None:
            result.config_status = "new"
        elif published_config.get("config") != new_config:
            result.config_status = "updated"
        else:
            result.config_status = "unchanged"
        if result.config_status != "unchanged":
            value = rec.config_value(config, import_id, imported_at)
            out.append((topic[RosterKind.DISTRICT], district_id.encode(), value))
    for file, kind in files.items():
        diff = diff_records(
            current[kind],
            upload.fields[kind],
            complete=upload.complete[kind],
            keep=_keep(kind, current[kind], upload, district_id),
        )
        for change in diff.changes:
            value = rec.encode_value(
                district_id, import_id, imported_at, change.is_active, change.fields
            )
            out.append((topic[kind], change.key.encode(), value))
        rejected = _rejected_rows(upload.errors, file)
        result.summaries.append(FileSummary(file, upload.accepted[file], rejected, diff))
    result.published = publish(settings, out)
    log.info("roster import %s: %d record(s) published", import_id, result.published)
    return result
