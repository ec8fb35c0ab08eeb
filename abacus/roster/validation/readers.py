"""Reading the uploads: bytes → text, CSV → header and rows, files from a folder."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from abacus.roster.validation.fields import Column, FieldError, shown
from abacus.roster.validation.models import ROSTER_FILES, RowError

__all__ = ["Table", "check_row", "decode_upload", "lookup", "read_roster_dir", "read_table"]


def decode_upload(payload: bytes) -> str:
    """Bytes -> text: UTF-8 with or without BOM (UTF-16 if it has a BOM); bad bytes become U+FFFD,
    which the field checks then report on the row they occur in."""
    if payload.startswith((b"\xff\xfe", b"\xfe\xff")):
        return payload.decode("utf-16", errors="replace")
    return payload.decode("utf-8-sig", errors="replace")


def _canon(header: str) -> str:
    return header.strip().lstrip("\ufeff").replace("_", "").replace(" ", "").casefold()


@dataclass
class Table:
    name: str
    header: dict[str, int]
    rows: list[tuple[int, list[str]]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    width: int = 0
    usable: bool = True  # False once the file itself (not just a row) is rejected


def read_table(name: str, text: str, columns: Sequence[Column]) -> Table:
    table = Table(name, {})
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""), skipinitialspace=True)
    header_line = 0
    while True:
        start = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            table.errors.append(RowError(name, start, "", "", f"unreadable CSV: {exc}"))
            table.usable = False
            break
        fields = [f.strip() for f in fields]
        if not any(fields):
            continue
        if not header_line:
            header_line = start
            if not _read_header(table, start, fields, columns):
                break
            continue
        width = table.width
        if len(fields) > width and any(fields[width:]):
            reason = f"row has {len(fields)} fields but the header has {width}"
            table.errors.append(RowError(name, start, "", "", reason))
            continue
        table.rows.append((start, fields))
    if not header_line and table.usable:
        table.errors.append(RowError(name, 0, "", "", "file is empty (no header row)"))
        table.usable = False
    return table


def _read_header(table: Table, line: int, fields: list[str], columns: Sequence[Column]) -> bool:
    by_canon = {_canon(c.name): c.name for c in columns}
    table.width = len(fields)
    for index, raw in enumerate(fields):
        column = by_canon.get(_canon(raw))
        if column is None:
            continue  # unknown columns are ignored
        if column in table.header:
            table.errors.append(RowError(table.name, line, column, "", "duplicate column"))
            table.usable = False
        table.header[column] = index
    for column in columns:
        if column.header_required and column.name not in table.header:
            table.errors.append(
                RowError(table.name, line, column.name, "", "missing required column")
            )
            table.usable = False
    return table.usable


def check_row(
    table: Table, line: int, fields: list[str], columns: Sequence[Column]
) -> tuple[dict[str, object], list[RowError]]:
    values: dict[str, object] = {}
    errors: list[RowError] = []
    for column in columns:
        index = table.header.get(column.name)
        raw = fields[index] if index is not None and index < len(fields) else ""
        if not raw:
            if column.value_required:
                errors.append(
                    RowError(table.name, line, column.name, "", "required value is blank")
                )
            continue
        try:
            values[column.name] = column.check(raw)
        except FieldError as exc:
            errors.append(RowError(table.name, line, column.name, shown(raw, column), str(exc)))
    return values, errors


def _first_seen(seen: dict[str, int], key: str, line: int) -> int | None:
    """Record `key` at `line`; return the earlier line if it was already seen."""
    if key in seen:
        return seen[key]
    seen[key] = line
    return None


def lookup(files: Mapping[str, bytes | str], wanted: str) -> str | None:
    for key, payload in files.items():
        if Path(key).name == wanted:
            return decode_upload(payload) if isinstance(payload, bytes) else payload
    return None


def read_roster_dir(directory: Path) -> dict[str, bytes]:
    """The roster files present in `directory` (absent ones are reported by validate_roster)."""
    return {n: (directory / n).read_bytes() for n in ROSTER_FILES if (directory / n).is_file()}
