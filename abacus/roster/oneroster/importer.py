"""`abacus roster import PACKAGE` for a OneRoster 1.1 zip or folder: read the package and the
district's topics, build the upload, report errors, publish what changed (the same topics,
records and summaries as the upload document's files, plus the OneRoster state topic)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from abacus.district import ConfigError, DistrictConfig
from abacus.kafka.compacted import publish, read_latest
from abacus.kafka.topics import ensure_topics
from abacus.roster import records as rec
from abacus.roster.diff import diff_records
from abacus.roster.importer import (
    CONFIG_FILE,
    REPORT_FILE,
    FileSummary,
    ImportResult,
    config_change,
    district_docs,
    load_config,
    next_version,
    roster_topics,
)
from abacus.roster.oneroster.files import MANIFEST
from abacus.roster.oneroster.manifest import Manifest, parse_manifest
from abacus.roster.oneroster.package import Package, PackageError, read_package
from abacus.roster.oneroster.state import bucket_records, decode_state
from abacus.roster.oneroster.upload import (
    KIND_LABELS,
    OneRosterUpload,
    build_upload,
    no_cyclic_gc,
)
from abacus.roster.records import RosterKind
from abacus.roster.report import write_error_report
from abacus.settings import AbacusSettings

__all__ = ["import_oneroster"]

log = logging.getLogger(__name__)


def _state_docs(raw: Mapping[bytes, bytes | None], district_id: str) -> dict[str, dict[str, Any]]:
    """This district's state buckets (a tombstone is a bucket that was emptied)."""
    prefix = f"{district_id}|".encode()
    out = {}
    for key, value in raw.items():
        if not key.startswith(prefix) or value is None:
            continue
        try:
            out[key.decode()] = rec.decode_value(value)
        except (rec.BadRecordError, UnicodeDecodeError) as exc:
            log.warning("ignoring a bad record on the OneRoster state topic: %s", exc)
    return out


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
    PackageError (not a readable package) and StackError (broker trouble).
    """
    package = read_package(path)
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
    topic = roster_topics(settings)
    state_topic = settings.topics.name(settings.topics.roster_oneroster)
    ensure_topics(settings)
    raw = read_latest(settings, [*topic.values(), state_topic])
    current = {kind: district_docs(raw[name], district_id) for kind, name in topic.items()}
    state_docs = _state_docs(raw[state_topic], district_id)
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
    )
    report = package.folder / REPORT_FILE
    if upload.errors:
        write_error_report(upload.errors, report)
    else:
        report.unlink(missing_ok=True)  # a stale report would describe an older upload
    result = ImportResult(district_id, upload.errors, report if upload.errors else None)
    result.notes = upload.notes
    if strict and upload.errors:
        result.summaries = _summaries(upload, {})
        return result

    published_config = current[RosterKind.DISTRICT].get(district_id)
    if config is None and published_config is None:
        raise ConfigError(
            f"no district config for {district_id!r}: pass --config FILE or put {CONFIG_FILE}"
            f" in {package.folder} (required the first time a district is imported)"
        )
    imported_at = next_version([*current.values(), state_docs])
    import_id = uuid.uuid4().hex[:16]
    out: list[tuple[str, bytes, bytes | None]] = []
    result.config_status, records = config_change(
        config, published_config, topic[RosterKind.DISTRICT], import_id, imported_at
    )
    out += records
    diffs = {}
    for kind in KIND_LABELS:
        diff = diff_records(
            current[kind], upload.fields[kind], keep=upload.keep(kind, current[kind])
        )
        for change in diff.changes:
            value = rec.encode_value(
                district_id, import_id, imported_at, change.is_active, change.fields
            )
            out.append((topic[kind], change.key.encode(), value))
        diffs[kind] = diff
    new_state = bucket_records(district_id, upload.state)
    for key, doc in new_state.items():
        before = state_docs.get(key)
        if before is None or rec.fields_of(before) != doc:
            value = rec.encode_value(district_id, import_id, imported_at, True, doc)
            out.append((state_topic, key.encode(), value))
    out += [(state_topic, key.encode(), None) for key in state_docs if key not in new_state]
    result.summaries = _summaries(upload, diffs)
    result.published = publish(settings, out)
    log.info("OneRoster import %s: %d record(s) published", import_id, result.published)
    return result
