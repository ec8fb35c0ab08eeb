"""Unit tests for the roster diff (new/updated/unchanged/deactivated) and record format."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from abacus.catalog import ROSTER_STUDENTS, ROSTER_USERS
from abacus.district import load_district_config
from abacus.roster.diff import Change, diff_records
from abacus.roster.records import (
    BadRecordError,
    RosterKind,
    config_value,
    decode_value,
    district_row,
    encode_value,
    record_key,
    roster_row,
    student_fields,
    user_fields,
)
from abacus.roster.validation import read_roster_dir, validate_roster

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def published(fields: dict[str, Any], *, active: bool = True, at: int = 1) -> dict[str, Any]:
    """A document as the importer reads it back from a topic."""
    return decode_value(encode_value("d1", "imp0", at, active, fields))


STUDENT = {"student_id": "5001", "first_name": "Ada", "grade": "3", "is_ell": False}
USER = {"employee_id": "0101", "username": "tgreen", "buildings": ["North"], "user_type": 1}
LINK = {"employee_id": "0101", "student_id": "5001"}


def test_first_upload_is_all_new() -> None:
    diff = diff_records({}, {"d1|5001": STUDENT, "d1|5002": {**STUDENT, "student_id": "5002"}})
    assert (diff.new, diff.updated, diff.unchanged, diff.deactivated) == (2, 0, 0, 0)
    assert [c.is_active for c in diff.changes] == [True, True]


def test_same_upload_again_is_unchanged_and_publishes_nothing() -> None:
    diff = diff_records({"d1|5001": published(STUDENT)}, {"d1|5001": dict(STUDENT)})
    assert (diff.new, diff.updated, diff.unchanged, diff.deactivated) == (0, 0, 1, 0)
    assert diff.changes == []


def test_any_changed_field_is_an_update() -> None:
    changed = {**STUDENT, "grade": "4"}
    diff = diff_records({"d1|5001": published(STUDENT)}, {"d1|5001": changed})
    assert (diff.updated, diff.unchanged) == (1, 0)
    assert diff.changes == [Change("d1|5001", changed, True)]


def test_missing_record_is_deactivated_with_its_last_fields() -> None:
    current = {"d1|5001": published(STUDENT), "d1|5002": published({**STUDENT, "x": 1})}
    diff = diff_records(current, {"d1|5001": dict(STUDENT)})
    assert (diff.unchanged, diff.deactivated) == (1, 1)
    assert diff.changes == [Change("d1|5002", {**STUDENT, "x": 1}, False)]


def test_already_inactive_record_is_not_deactivated_again() -> None:
    diff = diff_records({"d1|5001": published(STUDENT, active=False)}, {})
    assert diff.deactivated == 0
    assert diff.changes == []


def test_inactive_record_back_on_the_roster_is_an_update() -> None:
    diff = diff_records({"d1|5001": published(STUDENT, active=False)}, {"d1|5001": STUDENT})
    assert (diff.new, diff.updated) == (0, 1)
    assert diff.changes == [Change("d1|5001", STUDENT, True)]


def test_incomplete_upload_and_kept_keys_never_deactivate() -> None:
    current = {"d1|5001": published(STUDENT), "d1|5002": published(STUDENT)}
    assert diff_records(current, {}, complete=False).changes == []
    diff = diff_records(current, {}, keep={"d1|5001"})
    assert [(c.key, c.is_active) for c in diff.changes] == [("d1|5002", False)]


def test_links_and_users_diff_the_same_way() -> None:
    links = {"d1|0101|5001": published(LINK), "d1|0102|5001": published(LINK)}
    diff = diff_records(links, {"d1|0101|5001": dict(LINK), "d1|0103|5001": LINK})
    assert (diff.new, diff.unchanged, diff.deactivated) == (1, 1, 1)
    users = {"d1|0101": published(USER)}
    diff = diff_records(users, {"d1|0101": {**USER, "buildings": ["North", "South"]}})
    assert diff.updated == 1


def test_fields_of_validated_rows_survive_the_json_round_trip() -> None:
    roster = validate_roster(read_roster_dir(EXAMPLES / "district"), today=date(2025, 10, 1))
    for kind, fields in [
        *((RosterKind.USERS, user_fields(u)) for u in roster.users),
        *((RosterKind.STUDENTS, student_fields(s)) for s in roster.students),
    ]:
        key = record_key("mv", kind, fields)
        doc = published(fields)
        assert diff_records({key: doc}, {key: fields}).unchanged == 1
    admin = next(u for u in roster.users if u.employee_id == "0501")
    assert "password" not in json.dumps(user_fields(admin)).lower()


def test_rows_from_records() -> None:
    fields = {
        **STUDENT,
        "last_name": "Byron",
        "building": "North",
        "is_iep": True,
        **{f"district_data_{n}": "" for n in range(1, 6)},
    }
    doc = decode_value(encode_value("d1", "imp1", 1_700_000_000_000, False, fields))
    row = dict(
        zip(ROSTER_STUDENTS.columns, roster_row(RosterKind.STUDENTS, "d1|5001", doc), strict=True)
    )
    assert row["is_iep"] == 1
    assert row["is_active"] == 0
    assert row["version"] == 1_700_000_000_000
    with pytest.raises(BadRecordError, match="key"):
        roster_row(RosterKind.STUDENTS, "d2|5001", doc)
    user = decode_value(encode_value("d1", "i", 5, True, {**USER, "first_name": "T"}))
    assert len(roster_row(RosterKind.USERS, "d1|0101", user)) == len(ROSTER_USERS.columns)
    with pytest.raises(BadRecordError, match="first_name"):
        roster_row(RosterKind.USERS, "d1|0101", {**user, "first_name": 7})


@pytest.mark.parametrize("value", [None, b"\xff", b"[]", b'{"v": 2}'])
def test_bad_values_are_rejected(value: bytes | None) -> None:
    with pytest.raises(BadRecordError):
        decode_value(value)


def test_district_config_round_trips() -> None:
    config = load_district_config(EXAMPLES / "district" / "district.toml", district_id="mv")
    doc = decode_value(config_value(config, "imp", 42))
    again, row = district_row("mv", doc)
    assert again == config
    assert row[0] == "mv"
    assert row[4] == 42
