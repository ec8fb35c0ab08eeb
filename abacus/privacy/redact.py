"""Export files without a deleted student: the CSV minus their rows, its manifest updated
(pure; the privacy consumer reads and writes the files).

The other rows stay byte for byte as generated (same CSV dialect as `write_rows`), so the
file is still the snapshot its requester asked for, minus the deleted students.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Collection
from datetime import datetime
from typing import Any

from abacus.domain.csvcells import EXPORT_HEADER, neutralize

__all__ = ["STUDENT_COLUMN", "redact_csv", "redacted_manifest"]

# The export's student number (the roster's StudentID), in both header spellings.
STUDENT_COLUMN = EXPORT_HEADER[3]


def redact_csv(data: bytes, students: Collection[str]) -> tuple[bytes, int]:
    """(the CSV without these students' rows, rows removed); unchanged bytes when none."""
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    if not rows:
        return data, 0
    header, body = rows[0], rows[1:]
    try:
        column = header.index(STUDENT_COLUMN)
    except ValueError:
        raise ValueError(f"not an export CSV: no {STUDENT_COLUMN} column") from None
    cells = {neutralize(s) for s in students}  # as write_rows wrote them
    kept = [row for row in body if len(row) <= column or row[column] not in cells]
    removed = len(body) - len(kept)
    if not removed:
        return data, 0
    out = io.StringIO(newline="")
    writer = csv.writer(out, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(kept)
    return out.getvalue().encode("utf-8"), removed


def redacted_manifest(
    manifest: dict[str, Any], data: bytes, *, removed: int, request_id: str, at: datetime
) -> dict[str, Any]:
    """The manifest of a redacted CSV: rows, bytes and sha256 of the new file, and a note of
    the deletion that changed it."""
    notes = [*manifest.get("redactions", []), {
        "privacy_request": request_id, "rows_removed": removed, "at": at.isoformat(),
    }]  # fmt: skip
    return {
        **manifest,
        "rows": int(manifest.get("rows", removed)) - removed,
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "redactions": notes,
    }
