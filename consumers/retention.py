"""The retention sweep: delete each export's files (CSV, manifest, leftovers of a crashed
write) once its download link has expired. The worker runs it every
``ABACUS_EXPORTS__SWEEP_INTERVAL_S`` (`streams/retention.py`).

A link expires ``retention_s`` after it is signed, which happens after the CSV is written
and before the manifest is: an export whose newest file is older than the retention has an
expired link. Only regular files named as the export writer names them
(`abacus/export/files.py`), in real district folders, are ever deleted. The log carries
counts only.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from abacus.export.files import parse_file_name

__all__ = ["SweepResult", "sweep_exports"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepResult:
    """What one sweep deleted."""

    exports: int
    files: int
    bytes: int


def sweep_exports(export_dir: Path, *, retention_s: float, now: float) -> SweepResult:
    """Delete every export whose newest file is at least ``retention_s`` old at ``now``
    (epoch seconds). Blocking: run it in a thread."""
    exports = files = size = 0
    for entries in _exports(export_dir).values():
        if max(st.st_mtime for _, st in entries) + retention_s > now:
            continue
        exports += 1
        for path, st in entries:
            with contextlib.suppress(FileNotFoundError):  # gone meanwhile: fine
                path.unlink()
                files += 1
                size += st.st_size
    if exports:
        log.info("deleted %d expired export(s): %d file(s), %d byte(s)", exports, files, size)
    return SweepResult(exports, files, size)


def _exports(export_dir: Path) -> dict[tuple[str, str], list[tuple[Path, os.stat_result]]]:
    """(district folder, request id) → its regular files with their lstat."""
    found: dict[tuple[str, str], list[tuple[Path, os.stat_result]]] = {}
    if not export_dir.is_dir():
        return found
    for folder in export_dir.iterdir():
        if folder.is_symlink() or not folder.is_dir():
            continue
        for path in folder.iterdir():
            parsed = parse_file_name(path.name)
            if parsed is None:
                continue
            try:
                st = path.lstat()
            except FileNotFoundError:
                continue
            if stat.S_ISREG(st.st_mode):
                found.setdefault((folder.name, parsed[0]), []).append((path, st))
    return found
