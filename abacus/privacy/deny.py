"""The deny-list: deleted students (or whole districts) whose late data is dropped (pure).

An entry blocks data dated before its re-enable, and all data while it has none: a late or
replayed event of a deleted student never brings them back. Re-rostering the same id does
not lift it; an admin's explicit re-enable (`abacus privacy reenable`) does, and only for
data dated from the re-enable on, so the student starts from zero.

The worker keeps the whole list; each ingest batch gets only the entries its record keys
(student ids, by the event contract) and whole districts need (`for_keys`), so the ingest
processes do one dict lookup per event.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from abacus.errors import InvalidEventError
from abacus.events.codec import decode_record

__all__ = [
    "WHOLE_DISTRICT",
    "BatchDeny",
    "DenyEntry",
    "DenyList",
    "batch_denies",
    "dead_letter_matcher",
    "decode_entry",
    "encode_entry",
    "record_students",
]

WHOLE_DISTRICT = ""  # the student id of a district-level entry
# (district, student or WHOLE_DISTRICT) -> re-enabled at (epoch ms), or None: denied for good.
BatchDeny = Mapping[tuple[str, str], int | None]


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


@dataclass(frozen=True)
class DenyEntry:
    district_id: str
    student_id: str  # WHOLE_DISTRICT for a deleted district
    request_id: str
    deleted_at: datetime
    reenabled_at: datetime | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.district_id, self.student_id)

    def blocks(self, at: datetime) -> bool:
        """Whether data dated ``at`` is dropped."""
        return self.reenabled_at is None or at < self.reenabled_at

    def row(self, version: int) -> tuple[Any, ...]:
        """The `privacy_deny` row (catalog column order)."""
        return (
            self.district_id, self.student_id, self.request_id, self.deleted_at,
            self.reenabled_at, version,
        )  # fmt: skip


def encode_entry(entry: DenyEntry) -> tuple[bytes, bytes]:
    """(key, value) on the compacted `privacy-deny` topic (read by `abacus dlq` and the
    roster importer, which cannot open the worker's store)."""
    doc = {
        "v": 1,
        "district_id": entry.district_id,
        "student_id": entry.student_id,
        "request_id": entry.request_id,
        "deleted_at": _ms(entry.deleted_at),
        "reenabled_at": None if entry.reenabled_at is None else _ms(entry.reenabled_at),
    }
    key = f"{entry.district_id}|{entry.student_id}".encode()
    return key, json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def decode_entry(value: bytes) -> DenyEntry | None:
    """The entry of a `privacy-deny` record, or None for one this version cannot read."""
    try:
        doc = json.loads(value)
        reenabled = doc["reenabled_at"]
        return DenyEntry(
            str(doc["district_id"]),
            str(doc["student_id"]),
            str(doc["request_id"]),
            datetime.fromtimestamp(int(doc["deleted_at"]) / 1000, UTC),
            None if reenabled is None else datetime.fromtimestamp(int(reenabled) / 1000, UTC),
        )
    except (ValueError, KeyError, TypeError):
        return None


class DenyList:
    """The latest entry per (district, student)."""

    def __init__(self, entries: Iterable[DenyEntry] = ()) -> None:
        self._entries: dict[tuple[str, str], DenyEntry] = {}
        self._by_key: dict[bytes, list[DenyEntry]] = {}
        self._districts: dict[str, DenyEntry] = {}
        self.update(entries)

    def __len__(self) -> int:
        return len(self._entries)

    def update(self, entries: Iterable[DenyEntry]) -> None:
        for entry in entries:
            self._entries[entry.key] = entry
        self._by_key = {}
        self._districts = {}
        for entry in self._entries.values():
            if entry.student_id == WHOLE_DISTRICT:
                self._districts[entry.district_id] = entry
            else:
                self._by_key.setdefault(entry.student_id.encode(), []).append(entry)

    def entries(self) -> list[DenyEntry]:
        return list(self._entries.values())

    def get(self, district_id: str, student_id: str) -> DenyEntry | None:
        return self._entries.get((district_id, student_id))

    def denies(self, district_id: str, student_id: str, at: datetime) -> bool:
        """Whether data of this student dated ``at`` is dropped (their entry or their
        district's)."""
        for key in ((district_id, student_id), (district_id, WHOLE_DISTRICT)):
            entry = self._entries.get(key)
            if entry is not None and entry.blocks(at):
                return True
        return False

    def district_denied(self, district_id: str, at: datetime) -> bool:
        entry = self._districts.get(district_id)
        return entry is not None and entry.blocks(at)

    def key_denied(self, key: bytes, at: datetime) -> bool:
        """Whether a student id (a record key), in any district, is denied at ``at``."""
        return any(e.blocks(at) for e in self._by_key.get(key, ()))

    def record_denied(self, key: bytes | None, value: bytes | None, at: datetime) -> bool:
        """Whether a raw record belongs to a denied student: whoever it names when it can be
        read (`record_students`), else its key (the event contract keys by student id)."""
        named = record_students(value)
        if named:
            return any(self.denies(d, s, at) for d, s in named)
        return key is not None and self.key_denied(key, at)

    def for_keys(self, keys: Iterable[bytes | None]) -> dict[tuple[str, str], int | None]:
        """The entries a batch with these record keys needs, as a `BatchDeny`."""
        out: dict[tuple[str, str], int | None] = {
            e.key: None if e.reenabled_at is None else _ms(e.reenabled_at)
            for e in self._districts.values()
        }
        if self._by_key:
            by_key = self._by_key
            for key in keys:
                for e in by_key.get(key, ()) if key is not None else ():
                    out[e.key] = None if e.reenabled_at is None else _ms(e.reenabled_at)
        return out


def batch_denies(deny: BatchDeny, district_id: str, student_id: str, occurred_ms: int) -> bool:
    """`DenyList.denies` on a batch's entries (the ingest processes' check)."""
    for key in ((district_id, student_id), (district_id, WHOLE_DISTRICT)):
        if key in deny:
            until = deny[key]
            if until is None or occurred_ms < until:
                return True
    return False


def record_students(value: bytes | None) -> set[tuple[str, str]]:
    """(district, student) of every event a raw record names, as far as it can be read: a
    record that does not decode may still be JSON naming them; undecodable bytes name none
    (only their key can say whose they are)."""
    try:
        events: list[Any] = decode_record(value)
    except InvalidEventError:
        try:
            doc = json.loads(value or b"")
        except (ValueError, UnicodeDecodeError):
            return set()
        events = doc if isinstance(doc, list) else [doc]
    out = set()
    for event in events:
        if isinstance(event, dict):
            district, student = event.get("district_id"), event.get("student_id")
            if isinstance(district, str) and isinstance(student, str):
                out.add((district, student))
    return out


def dead_letter_matcher(
    entries: Iterable[DenyEntry], students: Collection[str], at: datetime
) -> Callable[[bytes | None, bytes | None], bool]:
    """Whether a stored dead letter belongs to a deletion: a record that names a denied
    student (or district) when it can be read, else one whose key is a denied student id
    or one of ``students`` (a deleted district's, whose entry names no student)."""
    deny = DenyList(entries)

    def match(key: bytes | None, value: bytes | None) -> bool:
        if deny.record_denied(key, value, at):
            return True
        return (
            bool(key) and not record_students(value) and key.decode("utf-8", "replace") in students
        )

    return match
