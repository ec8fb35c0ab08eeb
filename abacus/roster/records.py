"""Roster records on the compacted topics: keys, versioned JSON values, ClickHouse rows (pure).

A value is one JSON object: the envelope (``v``, ``district_id``, ``import_id``,
``imported_at`` epoch ms, ``is_active``) plus the record's fields. Only what the product
uses is published: no date of birth, gender, race, ethnicity and never a password — a
staff record carries an argon2id hash of it (``password_hash``, and ``password_set_at``
epoch ms), added before publishing (abacus/roster/publishing.py). Users and students from
a OneRoster package also carry ``sourced_id`` (the SIS's key; absent for rows of the upload
document's files).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson

from abacus.district import DISTRICT_DATA_COLUMNS, DistrictConfig
from abacus.errors import AbacusError
from abacus.roster.validation import Student, TeacherStudentLink, User

__all__ = [
    "ENVELOPE",
    "RECORD_VERSION",
    "BadRecordError",
    "RosterKind",
    "config_value",
    "decode_value",
    "district_row",
    "encode_value",
    "fields_of",
    "key_parts",
    "link_fields",
    "record_key",
    "roster_row",
    "state_row",
    "student_fields",
    "user_fields",
]

RECORD_VERSION = 1
ENVELOPE = frozenset({"v", "district_id", "import_id", "imported_at", "is_active"})
_DATA = tuple(c.lower() for c in DISTRICT_DATA_COLUMNS)  # district_data_1 .. district_data_5


class RosterKind(StrEnum):
    USERS = "users"
    STUDENTS = "students"
    LINKS = "links"
    DISTRICT = "district_config"
    ONEROSTER_STATE = "oneroster_state"  # the OneRoster importer's state buckets


class BadRecordError(AbacusError, ValueError):
    """A topic record that cannot become a row; the reason names fields, never values."""


# --- fields of validated rows (JSON-native types, so they compare equal after a round trip) ------


def user_fields(user: User) -> dict[str, Any]:
    """A staff record's fields, without its password (the importer adds the hash)."""
    return {
        "employee_id": user.employee_id,
        "username": user.username,
        "email": user.email,  # kept: export links are mailed to the requesting staff member
        "first_name": user.first_name,
        "last_name": user.last_name,
        "user_type": int(user.user_type),
        "buildings": list(user.buildings),
    }


def student_fields(student: Student) -> dict[str, Any]:
    data = {name.lower(): student.district_data.get(name, "") for name in DISTRICT_DATA_COLUMNS}
    return {
        "student_id": student.student_id,
        "first_name": student.first_name,
        "last_name": student.last_name,
        "grade": student.grade,
        "building": student.building,
        "is_ell": student.is_ell,
        "is_iep": student.is_iep,
        **data,
    }


def link_fields(link: TeacherStudentLink) -> dict[str, Any]:
    return {"employee_id": link.employee_id, "student_id": link.student_id}


def record_key(district_id: str, kind: RosterKind, fields: Mapping[str, Any]) -> str:
    """``district|employee_id``, ``district|student_id``, ``district|employee|student``."""
    if kind is RosterKind.USERS:
        return f"{district_id}|{fields['employee_id']}"
    if kind is RosterKind.STUDENTS:
        return f"{district_id}|{fields['student_id']}"
    if kind is RosterKind.LINKS:
        return f"{district_id}|{fields['employee_id']}|{fields['student_id']}"
    return district_id


def key_parts(kind: RosterKind, key: str) -> tuple[str, ...]:
    """A key's parts: (district, employee), (district, student), (district, employee,
    student). A staff id may hold ``|`` (any 7-bit ASCII); district and student ids never do."""
    district_id, _, rest = key.partition("|")
    if kind is RosterKind.LINKS:
        employee_id, _, student_id = rest.rpartition("|")
        return (district_id, employee_id, student_id)
    return (district_id, rest)


# --- values ---------------------------------------------------------------------------------------


def encode_value(
    district_id: str,
    import_id: str,
    imported_at: int,
    is_active: bool,
    fields: Mapping[str, Any],
) -> bytes:
    doc = {
        "v": RECORD_VERSION,
        "district_id": district_id,
        "import_id": import_id,
        "imported_at": imported_at,
        "is_active": is_active,
        **fields,
    }
    # The bytes of json.dumps(doc, separators=(",", ":"), sort_keys=True) for ASCII text
    # (non-ASCII is written as UTF-8 instead of \u escapes), ten times faster.
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


def config_value(config: DistrictConfig, import_id: str, imported_at: int) -> bytes:
    """The district-config record: the envelope plus ``config`` (the validated file)."""
    assert config.district_id is not None
    fields = {"config": config.model_dump(mode="json")}
    return encode_value(config.district_id, import_id, imported_at, True, fields)


def decode_value(value: bytes | None) -> dict[str, Any]:
    if value is None:
        raise BadRecordError("empty value (tombstone)")
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:  # also bytes that are not UTF-8
        raise BadRecordError("value is not JSON") from None
    if not isinstance(doc, dict):
        raise BadRecordError("value is not a JSON object")
    if doc.get("v") != RECORD_VERSION:
        raise BadRecordError(f"unknown record version {doc.get('v')!r}")
    return doc


def fields_of(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in ENVELOPE}


# --- ClickHouse rows ------------------------------------------------------------------------------


def _get(doc: Mapping[str, Any], name: str, kind: type, optional: bool = False) -> Any:
    value = doc.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise BadRecordError(f"field {name} is missing or has the wrong type")
    return value


def _tail(doc: Mapping[str, Any]) -> tuple[Any, ...]:
    version = _get(doc, "imported_at", int)
    updated = datetime.fromtimestamp(version / 1000, UTC)
    return (int(_get(doc, "is_active", bool)), _get(doc, "import_id", str), version, updated)


def roster_row(kind: RosterKind, key: str, doc: Mapping[str, Any]) -> tuple[Any, ...]:
    """The ClickHouse row of a users/students/links record; the key must match the value."""
    district_id = _get(doc, "district_id", str)
    if kind is RosterKind.STUDENTS:
        row = (
            district_id,
            _get(doc, "student_id", str),
            _get(doc, "first_name", str),
            _get(doc, "last_name", str),
            _get(doc, "grade", str),
            _get(doc, "building", str),
            int(_get(doc, "is_ell", bool)),
            int(_get(doc, "is_iep", bool)),
            *(_get(doc, name, str) for name in _DATA),
            _get(doc, "sourced_id", str, optional=True) or "",
        )
    elif kind is RosterKind.USERS:
        buildings = _get(doc, "buildings", list)
        if not all(isinstance(b, str) for b in buildings):
            raise BadRecordError("field buildings must be a list of strings")
        row = (
            district_id,
            _get(doc, "employee_id", str),
            _get(doc, "username", str),
            _get(doc, "email", str, optional=True) or "",
            _get(doc, "first_name", str),
            _get(doc, "last_name", str, optional=True) or "",
            _get(doc, "user_type", int),
            buildings,
            _get(doc, "sourced_id", str, optional=True) or "",
            _get(doc, "password_hash", str, optional=True) or "",
            _get(doc, "password_set_at", int, optional=True) or 0,
        )
    elif kind is RosterKind.LINKS:
        row = (district_id, _get(doc, "employee_id", str), _get(doc, "student_id", str))
    else:
        raise BadRecordError(f"not a roster kind: {kind}")
    if record_key(district_id, kind, doc) != key:
        raise BadRecordError("record key does not match its value")
    return (*row, *_tail(doc))


def state_row(key: str, doc: Mapping[str, Any], value: bytes) -> tuple[Any, ...]:
    """The ``roster_oneroster_state`` row of a OneRoster importer state record (a bucket):
    its value kept as published, so that it can be put back byte for byte."""
    district_id = _get(doc, "district_id", str)
    if not key.startswith(f"{district_id}|"):
        raise BadRecordError("record key does not match its value")
    version = _get(doc, "imported_at", int)
    updated = datetime.fromtimestamp(version / 1000, UTC)
    return (district_id, key, value.decode(), version, updated)


def district_row(key: str, doc: Mapping[str, Any]) -> tuple[DistrictConfig, tuple[Any, ...]]:
    """The validated config and its ``districts`` row from a district-config record."""
    district_id = _get(doc, "district_id", str)
    if district_id != key:
        raise BadRecordError("record key does not match its value")
    raw = _get(doc, "config", dict)
    try:
        config = DistrictConfig.model_validate({**raw, "district_id": district_id})
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise BadRecordError(f"invalid district config ({type(exc).__name__})") from None
    version, updated = _tail(doc)[2:]
    config_json = json.dumps(config.model_dump(mode="json"), sort_keys=True)
    return config, (district_id, config.name, config.timezone, config_json, version, updated)
