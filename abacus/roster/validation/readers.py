"""Reading the uploads: bytes → text, CSV → header and rows, files from a folder."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from abacus.errors import RosterInputError
from abacus.roster.validation.fields import Column, FieldError, shown
from abacus.roster.validation.models import ROSTER_FILES, RowError

__all__ = [
    "MAX_BYTES_SETTING",
    "MAX_ROWS_SETTING",
    "Table",
    "check_row",
    "decode_upload",
    "lookup",
    "read_roster_dir",
    "read_table",
    "too_many_rows",
]

MAX_BYTES_SETTING = "ABACUS_ROSTER__MAX_FILE_BYTES"
MAX_ROWS_SETTING = "ABACUS_ROSTER__MAX_ROWS"


def decode_upload(payload: bytes) -> str:
    """Bytes -> text: UTF-8 with or without BOM (UTF-16 if it has a BOM); bad bytes become U+FFFD,
    which the field checks then report on the row they occur in."""
    if payload.startswith((b"\xff\xfe", b"\xfe\xff")):
        return payload.decode("utf-16", errors="replace")
    return payload.decode("utf-8-sig", errors="replace")


def _canon(header: str) -> str:
    return header.strip().lstrip("\ufeff").replace("_", "").replace(" ", "").casefold()


def too_many_rows(name: str, max_rows: int) -> RosterInputError:
    return RosterInputError(
        f"{name}: more than {max_rows:,} rows ({MAX_ROWS_SETTING}); nothing imported"
    )


@dataclass
class Table:
    name: str
    header: dict[str, int]
    rows: list[tuple[int, list[str]]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    width: int = 0
    usable: bool = True  # False once the file itself (not just a row) is rejected
    names: list[str] = field(default_factory=list)  # the header as written
    _plans: dict[int, list[tuple[Column, int]]] = field(default_factory=dict)

    def plan(self, columns: Sequence[Column]) -> list[tuple[Column, int]]:
        """Each column with its index in the rows (past the end when the file lacks it),
        worked out once per file rather than per row."""
        plan = self._plans.get(id(columns))
        if plan is None:
            missing = max(self.width, len(self.names)) + 1
            plan = [(c, self.header.get(c.name, missing)) for c in columns]
            self._plans[id(columns)] = plan
        return plan


def _broken_quote(
    table: Table, start: int, end: int, fields: list[str], *, to_end: bool = False
) -> RowError:
    """The error of a record spanning lines: no roster value may hold a line break, so a
    quote opened in it was not closed on its line. Nothing of it is shown (it may hold the
    rest of the line: e-mail, password) and every line it swallowed is named."""
    index = next(i for i, f in enumerate(fields) if "\n" in f or "\r" in f)
    by_index = {i: c for c, i in table.header.items()}
    column = by_index.get(index, table.names[index] if index < len(table.names) else "")
    where = f"from line {start} to the end of the file" if to_end else f"over lines {start}-{end}"
    reason = (
        f"a quoted value runs {where} (unterminated quote?): lines {start}-{end} are not imported"
    )
    return RowError(table.name, start, column, "***", reason)


def read_table(
    name: str, text: str, columns: Sequence[Column], *, max_rows: int | None = None
) -> Table:
    """The header and rows of one file; RosterInputError past `max_rows` data rows."""
    table = Table(name, {})
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""), skipinitialspace=True)
    header_line = records = 0
    last: tuple[int, int, int, list[str]] | None = None  # the last record, if a broken quote
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
        end = reader.line_num
        fields = list(map(str.strip, fields))
        if not any(fields):
            continue
        last = None
        if not header_line:
            header_line = start
            if end > start:
                reason = f"the header runs over lines {start}-{end} (unterminated quote?)"
                table.errors.append(RowError(name, start, "", "", reason))
                table.usable = False
                break
            if not _read_header(table, start, fields, columns):
                break
            continue
        records += 1
        if max_rows is not None and records > max_rows:
            raise too_many_rows(name, max_rows)
        if end > start and any("\n" in f or "\r" in f for f in fields):
            last = (len(table.errors), start, end, fields)
            table.errors.append(_broken_quote(table, start, end, fields))
            continue
        width = table.width
        if len(fields) > width and any(fields[width:]):
            reason = f"row has {len(fields)} fields but the header has {width}"
            table.errors.append(RowError(name, start, "", "", reason))
            continue
        table.rows.append((start, fields))
    if last is not None:  # the last record read: the quote ran to the end of the file
        at, start, end, fields = last
        table.errors[at] = _broken_quote(table, start, end, fields, to_end=True)
    if not header_line and table.usable:
        table.errors.append(RowError(name, 0, "", "", "file is empty (no header row)"))
        table.usable = False
    return table


def _read_header(table: Table, line: int, fields: list[str], columns: Sequence[Column]) -> bool:
    by_canon = {_canon(c.name): c.name for c in columns}
    table.width = len(fields)
    table.names = fields
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
) -> tuple[dict[str, object], list[RowError], list[RowError]]:
    """The row's checked values, its errors (the row is rejected) and its warnings (not)."""
    values: dict[str, object] = {}
    errors: list[RowError] = []
    warnings: list[RowError] = []
    width = len(fields)
    for column, index in table.plan(columns):
        raw = fields[index] if index < width else ""
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
            continue
        if column.warn is not None and (reason := column.warn(raw)):
            warning = RowError(table.name, line, column.name, shown(raw, column), reason, True)
            warnings.append(warning)
    return values, errors, warnings


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


def read_roster_dir(directory: Path, *, max_bytes: int | None = None) -> dict[str, bytes]:
    """The roster files present in `directory` (absent ones are reported by validate_roster).
    RosterInputError, before anything is read, for a file larger than `max_bytes`."""
    present = [n for n in ROSTER_FILES if (directory / n).is_file()]
    for name in present:
        size = (directory / name).stat().st_size
        if max_bytes is not None and size > max_bytes:
            raise RosterInputError(
                f"{name}: {size:,} bytes, over the limit of {max_bytes:,}"
                f" ({MAX_BYTES_SETTING}); nothing imported"
            )
    return {name: (directory / name).read_bytes() for name in present}
