"""ClickHouse roster rows back into compacted-topic records (pure; the inverse of `roster_row`).

When the embedded broker restarts, its compacted topics are empty while ClickHouse still
holds every roster record it stored. Republishing each row as the record it came from
(same key, same fields, same version) lets the importer diff an upload against what was
published before: a student missing from the next upload is deactivated again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from abacus.catalog import (
    DISTRICTS,
    ROSTER_LINKS,
    ROSTER_ONEROSTER_STATE,
    ROSTER_STUDENTS,
    ROSTER_USERS,
    Table,
)
from abacus.roster.records import RECORD_VERSION, RosterKind, encode_value, record_key

__all__ = ["RESTORE_SOURCES", "STATE_SOURCE", "restored_record", "restored_state"]

# Where each kind's latest rows are read from (with the catalog's columns).
RESTORE_SOURCES: dict[RosterKind, Table] = {
    RosterKind.USERS: ROSTER_USERS,
    RosterKind.STUDENTS: ROSTER_STUDENTS,
    RosterKind.LINKS: ROSTER_LINKS,
    RosterKind.DISTRICT: DISTRICTS,
}
# The OneRoster importer's state buckets, stored as published (restored_state).
STATE_SOURCE: Table = ROSTER_ONEROSTER_STATE
_ENVELOPE_COLUMNS = {"district_id", "is_active", "import_id", "version", "updated_at"}
_BOOLS = {"is_ell", "is_iep"}
_OPTIONAL = {"email", "last_name"}  # users: None when the upload left them blank
# Published only by the OneRoster importer; a record from the upload document has none.
_OMITTED_WHEN_EMPTY = {"sourced_id"}


def restored_record(kind: RosterKind, row: Mapping[str, Any]) -> tuple[bytes, bytes]:
    """The (key, value) a stored row was published as (import id ``restored`` for configs,
    whose table does not keep it)."""
    district_id = str(row["district_id"])
    version = int(row["version"])
    if kind is RosterKind.DISTRICT:
        config = json.loads(row["config_json"])
        doc = {
            "v": RECORD_VERSION,
            "district_id": district_id,
            "import_id": "restored",
            "imported_at": version,
            "is_active": True,
            "config": config,
        }
        return district_id.encode(), json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
    fields: dict[str, Any] = {}
    for name, value in row.items():
        if name in _ENVELOPE_COLUMNS or (name in _OMITTED_WHEN_EMPTY and value == ""):
            continue
        if name in _BOOLS:
            value = bool(value)
        elif name in _OPTIONAL and kind is RosterKind.USERS and value == "":
            value = None
        elif name == "buildings":
            value = list(value)
        elif name == "user_type":
            value = int(value)
        fields[name] = value
    key = record_key(district_id, kind, fields)
    value = encode_value(
        district_id, str(row["import_id"]), version, bool(row["is_active"]), fields
    )
    return key.encode(), value


def restored_state(row: Mapping[str, Any]) -> tuple[bytes, bytes]:
    """The (key, value) a ``roster_oneroster_state`` row was published as (byte for byte)."""
    return str(row["key"]).encode(), str(row["doc"]).encode()
