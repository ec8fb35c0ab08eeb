"""Generated export files that hold deleted students: rewritten without them, or deleted."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Collection
from datetime import datetime
from pathlib import Path

from abacus.privacy.receipt import FileResult
from abacus.privacy.redact import redact_csv, redacted_manifest

__all__ = ["clear_export_files"]


def _rows(csv_path: Path) -> int:
    manifest = csv_path.with_suffix(".manifest.json")
    try:
        return int(json.loads(manifest.read_text())["rows"])
    except (OSError, ValueError, KeyError, TypeError):
        with csv_path.open("rb") as fh:
            return max(0, sum(1 for _ in fh) - 1)


def _write(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically, keeping its permissions and times: the export's
    retention counts from when it was generated, not from the redaction."""
    before = path.stat()
    tmp = path.with_name(path.name + ".redacting")
    tmp.write_bytes(data)
    os.chmod(tmp, before.st_mode & 0o777)
    os.utime(tmp, ns=(before.st_atime_ns, before.st_mtime_ns))
    os.replace(tmp, path)


def clear_export_files(
    home: Path,
    folder: Path,
    students: Collection[str] | None,
    *,
    request_id: str,
    at: datetime,
) -> list[FileResult]:
    """Every export of one district (``folder``) that holds these students: regenerated
    without their rows when others remain, else deleted with its manifest. With
    ``students`` None (a district deletion) the whole folder goes. Paths in the results are
    relative to ``home``. Run while no export is being written (the worker's export lock)."""
    if not folder.is_dir():
        return []

    def rel(path: Path) -> str:
        return str(path.relative_to(home))

    if students is None:
        results = [
            FileResult(rel(p), "deleted", _rows(p) if p.suffix == ".csv" else 0)
            for p in sorted(folder.iterdir())
            if p.is_file()
        ]
        shutil.rmtree(folder)
        return results
    results = []
    # A partial file is what a crash left of an export being written: no manifest, no link.
    for partial in sorted(folder.glob("*.partial")):
        partial.unlink(missing_ok=True)
        results.append(FileResult(rel(partial), "deleted", 0))
    for csv_path in sorted(folder.glob("*.csv")):
        # The exports' retention sweep may delete a file meanwhile: then it is gone anyway.
        with contextlib.suppress(FileNotFoundError):
            result = _redact(csv_path, students, request_id, at)
            if result is not None:
                results.append(FileResult(rel(csv_path), *result))
    return results


def _redact(
    csv_path: Path, students: Collection[str], request_id: str, at: datetime
) -> tuple[str, int] | None:
    data, removed = redact_csv(csv_path.read_bytes(), students)
    if not removed:
        return None
    manifest_path = csv_path.with_suffix(".manifest.json")
    if data.count(b"\r\n") <= 1:  # the header alone: nobody else was in it
        csv_path.unlink()
        manifest_path.unlink(missing_ok=True)
        return "deleted", removed
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        doc = redacted_manifest(manifest, data, removed=removed, request_id=request_id, at=at)
        _write(manifest_path, (json.dumps(doc, indent=2) + "\n").encode())
    _write(csv_path, data)
    return "regenerated", removed
