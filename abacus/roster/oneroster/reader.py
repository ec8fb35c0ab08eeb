"""Reading one OneRoster CSV file: bytes -> header checked against the spec -> rows (pure)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field

from abacus.roster.oneroster.files import METADATA_PREFIX, FileSpec
from abacus.roster.validation import RowError
from abacus.roster.validation.readers import too_many_rows

__all__ = ["Row", "Table", "decode", "read_csv", "read_table"]


@dataclass(frozen=True, slots=True)
class Row:
    """One data row: its physical line (the header is line 1) and every column's value."""

    line: int
    values: dict[str, str]  # spec and metadata.* columns -> value, stripped ("" when blank)


@dataclass(slots=True)
class Table:
    name: str
    rows: list[Row] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    metadata: tuple[str, ...] = ()  # extension columns in the header
    usable: bool = True  # False: the file itself was rejected (nothing in it is used)


def decode(payload: bytes) -> str:
    """UTF-8 with or without a BOM (UTF-16 when it has one); bad bytes become U+FFFD, which the
    value checks report on the row they occur in."""
    if payload.startswith((b"\xff\xfe", b"\xfe\xff")):
        return payload.decode("utf-16", errors="replace")
    return payload.decode("utf-8-sig", errors="replace")


def read_csv(
    name: str, payload: bytes, *, max_rows: int | None = None
) -> tuple[list[tuple[int, list[str]]], list[RowError]]:
    """(line, fields) of every non-blank record, or the error that stopped reading;
    RosterInputError past `max_rows` data rows (the header is not counted)."""
    reader = csv.reader(io.StringIO(decode(payload).lstrip("\ufeff"), newline=""))
    out: list[tuple[int, list[str]]] = []
    limit = None if max_rows is None else max_rows + 1
    while True:
        start = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            return out, []
        except csv.Error as exc:
            return out, [RowError(name, start, "", "", f"unreadable CSV: {exc}")]
        fields = list(map(str.strip, fields))
        if any(fields):
            out.append((start, fields))
            if limit is not None and len(out) > limit:
                raise too_many_rows(name, limit - 1)


def _header_errors(spec: FileSpec, header: Sequence[str]) -> list[tuple[str, str]]:
    """Why `header` is not the spec's: (column, reason) pairs, in header order."""
    found: list[tuple[str, str]] = []
    seen: set[str] = set()
    by_fold = {c.casefold(): c for c in spec.columns}
    last_spec = -1
    for index, name in enumerate(header):
        if name in seen:
            found.append((name, "duplicate column"))
            continue
        seen.add(name)
        if name in spec.columns:
            last_spec = index
        elif name.startswith(METADATA_PREFIX) and len(name) > len(METADATA_PREFIX):
            continue
        elif name.casefold() in by_fold:
            found.append((name, f"headers are case-sensitive: write {by_fold[name.casefold()]!r}"))
        else:
            found.append((name, "unknown column (extension columns start with 'metadata.')"))
    folded = {h.casefold() for h in header}
    for column in spec.columns:
        if column not in seen and column.casefold() not in folded:
            what = "missing required column" if column in spec.required else "missing column"
            found.append((column, f"{what} (every spec column must be in the header)"))
    if not found:
        first_meta = next(
            (i for i, h in enumerate(header) if h.startswith(METADATA_PREFIX)), len(header)
        )
        if first_meta < last_spec:
            found.append((header[first_meta], "extension columns go after the spec's columns"))
        elif tuple(header[: len(spec.columns)]) != spec.columns:
            for expected, got in zip(spec.columns, header, strict=False):
                if expected != got:
                    order = ",".join(spec.columns)
                    found.append((got, f"column out of order: {expected!r} goes here ({order})"))
                    break
    return found


def read_table(spec: FileSpec, payload: bytes, *, max_rows: int | None = None) -> Table:
    """Read `spec.name`; the header must be the spec's columns in order (then metadata.*)."""
    table = Table(spec.name)
    records, errors = read_csv(spec.name, payload, max_rows=max_rows)
    table.errors.extend(errors)
    if errors:
        table.usable = False
    if not records:
        if table.usable:
            table.errors.append(RowError(spec.name, 0, "", "", "file is empty (no header row)"))
        table.usable = False
        return table
    (header_line, header), *body = records
    problems = _header_errors(spec, header)
    for column, reason in problems:
        table.errors.append(RowError(spec.name, header_line, column, "", reason))
    if problems:
        table.usable = False
        return table
    table.metadata = tuple(h for h in header if h.startswith(METADATA_PREFIX))
    width = len(header)
    for line, fields in body:
        if len(fields) > width and any(fields[width:]):
            reason = f"row has {len(fields)} fields but the header has {width}"
            table.errors.append(RowError(spec.name, line, "", "", reason))
            continue
        fields += [""] * (width - len(fields))
        table.rows.append(Row(line, dict(zip(header, fields, strict=False))))
    return table
