"""manifest.csv: the package's OneRoster version and each file's mode (absent, bulk, delta)."""

from __future__ import annotations

from dataclasses import dataclass

from abacus.roster.oneroster.files import MANIFEST, MANIFEST_FILES, READ_FILES, Mode
from abacus.roster.oneroster.reader import read_csv
from abacus.roster.validation import RowError

__all__ = ["Manifest", "parse_manifest"]

_HEADER = ["propertyName", "value"]
_VERSIONS = {"manifest.version": "1.0", "oneroster.version": "1.1"}


@dataclass(frozen=True, slots=True)
class Manifest:
    """Modes of every `file.X` (absent when missing or unreadable) and what was wrong."""

    modes: dict[str, Mode]  # "users.csv" -> mode, for all thirteen files
    errors: list[RowError]
    usable: bool  # False: not a OneRoster 1.1 manifest; nothing in the package is read

    def mode(self, file: str) -> Mode:
        return self.modes.get(file, Mode.ABSENT) if self.usable else Mode.ABSENT

    @property
    def read(self) -> dict[str, Mode]:
        """The files this importer reads and their modes, in reading order."""
        return {f: self.mode(f) for f in READ_FILES}


def _error(line: int, column: str, value: str, reason: str) -> RowError:
    return RowError(MANIFEST, line, column, value, reason)


def parse_manifest(payload: bytes | None) -> Manifest:
    if payload is None:
        reason = "file is missing (a OneRoster package must have manifest.csv)"
        return Manifest({}, [_error(0, "", "", reason)], usable=False)
    records, errors = read_csv(MANIFEST, payload)
    if errors or not records:
        errors = errors or [_error(0, "", "", "file is empty (no header row)")]
        return Manifest({}, errors, usable=False)
    (header_line, header), *body = records
    if header != _HEADER:
        reason = "header must be exactly propertyName,value (case-sensitive)"
        return Manifest({}, [_error(header_line, ",".join(header), "", reason)], usable=False)
    seen: dict[str, int] = {}
    props: dict[str, tuple[int, str]] = {}
    for line, fields in body:
        name, value = [*fields, "", ""][:2]
        if len(fields) > 2 and any(fields[2:]):
            errors.append(_error(line, "", "", f"row has {len(fields)} fields; expected 2"))
            continue
        if name in seen:
            errors.append(
                _error(line, name, value, f"duplicate property (first at line {seen[name]})")
            )
            continue
        seen[name] = line
        props[name] = (line, value)
    usable = True
    for prop, wanted in _VERSIONS.items():
        line, value = props.get(prop, (0, ""))
        if value != wanted:
            reason = f"must be {wanted}" + (
                " (only OneRoster 1.1 is read)" if "oneroster" in prop else ""
            )
            errors.append(_error(line, prop, value, reason if line else f"missing; {reason}"))
            usable = usable and prop != "oneroster.version"
    modes: dict[str, Mode] = {}
    known = {f"file.{f}" for f in MANIFEST_FILES}
    for prop, (line, value) in props.items():
        if prop.startswith("file.") and prop not in known:
            errors.append(_error(line, prop, value, "not a OneRoster 1.1 file"))
    for stem in MANIFEST_FILES:
        prop = f"file.{stem}"
        line, value = props.get(prop, (0, ""))
        try:
            modes[f"{stem}.csv"] = Mode(value.strip().lower())
        except ValueError:
            reason = "must be absent, bulk or delta; the file is not read"
            if not line:
                reason = "missing property; the file is not read"
            errors.append(_error(line, prop, value, reason))
            modes[f"{stem}.csv"] = Mode.ABSENT
    return Manifest(modes, errors, usable)
