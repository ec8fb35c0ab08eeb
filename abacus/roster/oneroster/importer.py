"""`abacus roster import PACKAGE` for a OneRoster 1.1 zip or folder: read the package and the
district's topics, build the upload, report errors, publish what changed (the same topics,
records and summaries as the upload document's files, plus the OneRoster state topic)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from abacus.district import DistrictConfig
from abacus.roster import records as rec
from abacus.roster.denied import drop_denied, skipped_note
from abacus.roster.importer import (
    FileSummary,
    ImportResult,
    load_config,
    require_config,
    write_report,
)
from abacus.roster.oneroster.files import MANIFEST
from abacus.roster.oneroster.manifest import Manifest, parse_manifest
from abacus.roster.oneroster.package import Package, PackageError, read_package
from abacus.roster.oneroster.state import bucket_records, decode_state, state_without_students
from abacus.roster.oneroster.upload import (
    KIND_LABELS,
    OneRosterUpload,
    build_upload,
    no_cyclic_gc,
)
from abacus.roster.publishing import Publication, read_published
from abacus.roster.records import RosterKind
from abacus.settings import AbacusSettings

__all__ = ["import_oneroster"]

log = logging.getLogger(__name__)


def _summaries(upload: OneRosterUpload, diffs: Mapping[RosterKind, Any]) -> list[FileSummary]:
    return [
        FileSummary(label, upload.accepted[kind], upload.rejected[kind], diffs.get(kind))
        for kind, label in KIND_LABELS.items()
    ]


def import_oneroster(
    settings: AbacusSettings,
    path: Path,
    district_id: str,
    *,
    config_path: Path | None = None,
    strict: bool = False,
    today: date | None = None,
) -> ImportResult:
    """Import a OneRoster package (zip, or folder with manifest.csv); see `import_roster`.

    Errors go to ``roster_errors.csv`` in the folder, or beside the zip. Raises ConfigError,
    PackageError (not a readable package), RosterInputError (a file over a cap) and
    StackError (broker trouble).
    """
    package = read_package(path, max_bytes=settings.roster.max_file_bytes)
    config = load_config(package.folder, district_id, config_path)
    manifest = parse_manifest(package.files.get(MANIFEST))
    if not manifest.usable:
        first = manifest.errors[0]
        where = f" line {first.line}" if first.line else ""
        column = f" {first.column}" if first.column else ""
        raise PackageError(
            f"{path.name}: {MANIFEST}{where}{column}: {first.reason}; nothing imported"
        )

    with no_cyclic_gc():  # hundreds of thousands of acyclic dicts (see no_cyclic_gc)
        return _import(settings, package, manifest, config, district_id, strict, today)


def _import(
    settings: AbacusSettings,
    package: Package,
    manifest: Manifest,
    config: DistrictConfig | None,
    district_id: str,
    strict: bool,
    today: date | None,
) -> ImportResult:
    state_topic = settings.topics.name(settings.topics.roster_oneroster)
    published = read_published(settings, district_id, [state_topic])
    state_docs = published.extra[state_topic]  # buckets (an emptied one has no rows)
    old_state, bad = decode_state({k: rec.fields_of(d) for k, d in state_docs.items()})
    if bad:
        log.warning("%d OneRoster state record(s) of district %s ignored", len(bad), district_id)

    upload = build_upload(
        district_id,
        manifest,
        package.files,
        package.present,
        old_state,
        today=today or datetime.now(UTC).date(),
        max_rows=settings.roster.max_rows,
    )
    report = write_report(package.folder, upload.errors)
    result = ImportResult(district_id, upload.errors, report, notes=upload.notes)
    if strict and upload.errors:
        result.summaries = _summaries(upload, {})
        return result

    require_config(config, published, package.folder)
    denied = drop_denied(upload.fields, district_id, published.deny, datetime.now(UTC))
    if denied:
        upload.state = state_without_students(upload.state, denied)
        result.notes.append(skipped_note(len(denied)))
    out = Publication(published, state_docs)
    result.config_status = out.config(config)
    diffs = {
        kind: out.changes(kind, upload.fields[kind], keep=upload.keep(kind, published.docs[kind]))
        for kind in KIND_LABELS
    }
    new_state = bucket_records(district_id, upload.state)
    for key, doc in new_state.items():
        before = state_docs.get(key)
        if before is None or rec.fields_of(before) != doc:
            out.add(state_topic, key, doc)
    for key, before in state_docs.items():
        if key not in new_state and rec.fields_of(before).get("rows"):
            # A bucket emptied: an empty bucket, not a tombstone, so that it has a version
            # (the worker stores each bucket in ClickHouse, latest version wins).
            out.add(state_topic, key, {**rec.fields_of(before), "rows": {}})
    result.summaries = _summaries(upload, diffs)
    result.published = out.send(settings)
    return result
