"""Where an export's files live, and which file a download URL may name (pure rules).

The writer (`consumers/export.py`), the download route (`streams/web/exports.py`) and the
retention sweep (`consumers/retention.py`) all name files through here, so a path that the
writer could not have produced is never opened: both URL parts must match strict patterns
and the resolved path must stay inside the export directory (a decoded `%2F` or a symlink
cannot lead out of it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from abacus.district import DISTRICT_ID_RE
from abacus.errors import AbacusError

__all__ = [
    "REQUEST_ID_RE",
    "ExportPathError",
    "ExportPaths",
    "export_file",
    "export_paths",
    "parse_file_name",
]

# A request id names the export's files (use with fullmatch).
REQUEST_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
_SUFFIXES = {
    ".csv": "csv",
    ".manifest.json": "manifest",
    ".csv.partial": "partial",
    ".manifest.json.partial": "partial",
}
_CSV_NAME = re.compile(rf"(?P<id>{REQUEST_ID_RE.pattern})\.csv")


class ExportPathError(AbacusError, ValueError):
    """A district or file name that no export can have."""


@dataclass(frozen=True)
class ExportPaths:
    """One export's files: the CSV, its manifest, and the CSV while it is being written
    (the manifest is written as ``<manifest>.partial`` and renamed too)."""

    folder: Path
    csv: Path
    manifest: Path
    partial: Path


def export_paths(export_dir: Path, district_id: str, request_id: str) -> ExportPaths:
    """The files of one export; ExportPathError for ids that could lead elsewhere."""
    if not (_valid_district(district_id) and REQUEST_ID_RE.fullmatch(request_id)):
        raise ExportPathError("invalid path")
    folder = export_dir / district_id
    return ExportPaths(
        folder,
        folder / f"{request_id}.csv",
        folder / f"{request_id}.manifest.json",
        folder / f"{request_id}.csv.partial",
    )


def export_file(export_dir: Path, district_id: str, name: str) -> Path:
    """The CSV a download URL names (`/exports/{district_id}/{name}`), resolved; raise
    ExportPathError unless both parts are well-formed and it stays inside ``export_dir``."""
    match = _CSV_NAME.fullmatch(name)
    if match is None or not _valid_district(district_id):
        raise ExportPathError("invalid path")
    root = export_dir.resolve()
    path = (root / district_id / name).resolve()
    if not path.is_relative_to(root / district_id) or path.parent.parent != root:
        raise ExportPathError("invalid path")
    return path


def parse_file_name(name: str) -> tuple[str, str] | None:
    """(request id, kind) of a file an export writes — kind ``csv``, ``manifest`` or
    ``partial`` — or None for any other name."""
    for suffix, kind in _SUFFIXES.items():
        if name.endswith(suffix):
            request_id = name.removesuffix(suffix)
            if REQUEST_ID_RE.fullmatch(request_id):
                return request_id, kind
    return None


def _valid_district(district_id: str) -> bool:
    return DISTRICT_ID_RE.fullmatch(district_id) is not None
