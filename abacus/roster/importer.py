"""`abacus roster import`: read a roster folder, validate, diff against the topics, publish.

The three files may come together (the district's whole roster) or each on its own: a file
in the upload replaces what was published for its kind (a record it no longer has is
deactivated), and a kind whose file is not in the upload is left as it was. What an
uploaded file names but the upload lacks (buildings, staff and student ids) is checked
against the district's published roster (`PublishedIds`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from abacus.district import ConfigError, DistrictConfig, load_district_config
from abacus.errors import RosterInputError
from abacus.roster.denied import drop_denied, skipped_note
from abacus.roster.diff import RosterDiff
from abacus.roster.publishing import Publication, Published, read_published
from abacus.roster.records import RosterKind
from abacus.roster.report import write_error_report
from abacus.roster.upload import (
    keep,
    no_cyclic_gc,
    orphaned_buildings,
    published_ids,
    rejected_rows,
    upload_of,
)
from abacus.roster.validation import (
    LINKS_FILE,
    ROSTER_FILES,
    STUDENTS_FILE,
    USERS_FILE,
    PublishedIds,
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
    uploaded: bool = True  # False: the file was not in the upload (its records are kept)

    def line(self) -> str:
        if not self.uploaded:
            return f"{self.file}: not uploaded; the published records are kept as they are"
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
    warnings: list[RowError] = field(default_factory=list)  # rows imported all the same

    @property
    def rejected(self) -> int:
        """Rows with at least one error (a whole-file error counts once)."""
        return len({(e.file, e.line) for e in self.errors})

    @property
    def imported(self) -> bool:
        return all(s.diff is not None for s in self.summaries if s.uploaded)


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
    """Write the upload's errors (and warnings) to ``folder/roster_errors.csv``, or remove a
    stale report (it would describe an older upload); return the report's path if any."""
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
    """Validate the folder's roster files; unless `strict` stops it, publish what changed.

    Raises ConfigError (bad or missing district config), RosterInputError (no roster file,
    a file over a cap) and StackError (broker trouble).
    """
    config = load_config(directory, district_id, config_path)
    files = read_roster_dir(directory, max_bytes=settings.roster.max_file_bytes)
    if not files:
        raise RosterInputError(
            f"{directory.name or directory}: none of {', '.join(ROSTER_FILES)} is there;"
            " nothing imported"
        )
    with no_cyclic_gc():  # hundreds of thousands of acyclic dicts (see no_cyclic_gc)
        return _import(settings, directory, district_id, files, config, strict, today)


def _import(
    settings: AbacusSettings,
    directory: Path,
    district_id: str,
    files: dict[str, bytes],
    config: DistrictConfig | None,
    strict: bool,
    today: date | None,
) -> ImportResult:
    published: Published | None = None
    known: PublishedIds | None = None
    if len(files) < len(ROSTER_FILES):
        # A file on its own is checked against what the district has published.
        published = read_published(settings, district_id)
        known = published_ids(published.docs)
    max_rows = settings.roster.max_rows
    checked = validate_roster(files, today=today, published=known, max_rows=max_rows)
    upload = upload_of(district_id, checked)
    warnings = list(upload.warnings)
    if published is not None:
        warnings += orphaned_buildings(checked, published.docs[RosterKind.STUDENTS])
    report = write_report(directory, [*upload.errors, *warnings])
    result = ImportResult(district_id, upload.errors, report, warnings=warnings)
    kinds = {USERS_FILE: RosterKind.USERS, STUDENTS_FILE: RosterKind.STUDENTS}
    kinds[LINKS_FILE] = RosterKind.LINKS
    if strict and upload.errors:
        result.summaries = [
            FileSummary(
                f,
                upload.accepted[f],
                rejected_rows(upload.errors, f),
                uploaded=f in upload.uploaded,
            )
            for f in kinds
        ]
        return result

    if published is None:
        published = read_published(settings, district_id)
    require_config(config, published, directory)
    denied = drop_denied(upload.fields, district_id, published.deny, datetime.now(UTC))
    if denied:
        result.notes.append(skipped_note(len(denied)))
    out = Publication(published)
    result.config_status = out.config(config)
    for file, kind in kinds.items():
        if file not in upload.uploaded:
            result.summaries.append(FileSummary(file, 0, 0, uploaded=False))
            continue
        diff = out.changes(
            kind,
            upload.fields[kind],
            complete=upload.complete[kind],
            keep=keep(kind, published.docs[kind], upload, district_id),
            passwords=upload.passwords if kind is RosterKind.USERS else None,
        )
        rejected = rejected_rows(upload.errors, file)
        result.summaries.append(FileSummary(file, upload.accepted[file], rejected, diff))
    result.published = out.send(settings)
    return result
