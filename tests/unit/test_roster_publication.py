"""Unit tests for one import's publication (both roster formats build it): the district
config, changed records, tombstones, one version above everything published, and which
documents of the topics belong to the district. Nothing is sent."""

from __future__ import annotations

import json
from typing import Any

from abacus.district import DistrictConfig
from abacus.roster.publishing import Publication, Published, district_docs
from abacus.roster.records import (
    RosterKind,
    config_value,
    decode_value,
    encode_value,
    fields_of,
)

TOPICS = {
    RosterKind.USERS: "users",
    RosterKind.STUDENTS: "students",
    RosterKind.LINKS: "links",
    RosterKind.DISTRICT: "config",
}
CONFIG = DistrictConfig(
    district_id="d1", name="D", timezone="America/Chicago", school_year_start="08-15"
)
STUDENT = {"student_id": "5001", "first_name": "Ada", "grade": "3"}


def doc(fields: dict[str, Any], *, at: int, active: bool = True) -> dict[str, Any]:
    return decode_value(encode_value("d1", "imp0", at, active, fields))


def published(
    students: dict[str, dict[str, Any]] | None = None, config: dict[str, Any] | None = None
) -> Published:
    docs: dict[RosterKind, dict[str, dict[str, Any]]] = {kind: {} for kind in TOPICS}
    docs[RosterKind.STUDENTS] = students or {}
    if config is not None:
        docs[RosterKind.DISTRICT] = {"d1": config}
    return Published("d1", TOPICS, docs, {})


def test_the_version_is_above_every_published_one_including_other_topics() -> None:
    far = 10**15  # epoch ms far in the future: the clock alone would be below it
    pub = published({"d1|5001": doc(STUDENT, at=far)})
    assert Publication(pub).imported_at == far + 1
    assert Publication(pub, {"d1|users.csv|0": doc({}, at=far + 5)}).imported_at == far + 6


def test_config_new_updated_unchanged_and_none() -> None:
    assert Publication(published()).config(None) == ""
    out = Publication(published())
    assert out.config(CONFIG) == "new"
    [(topic, key, value)] = out.records
    assert (topic, key) == ("config", b"d1")
    assert value is not None
    assert json.loads(value)["config"]["name"] == "D"

    same = decode_value(config_value(CONFIG, "imp0", 1))
    out = Publication(published(config=same))
    assert (out.config(CONFIG), out.records) == ("unchanged", [])
    renamed = CONFIG.model_copy(update={"name": "E"})
    assert Publication(published(config=same)).config(renamed) == "updated"


def test_changes_are_encoded_in_order_with_one_import_id() -> None:
    pub = published({"d1|5001": doc(STUDENT, at=1), "d1|5002": doc(STUDENT, at=1)})
    out = Publication(pub)
    incoming = {"d1|5001": {**STUDENT, "grade": "4"}, "d1|5003": STUDENT}
    diff = out.changes(RosterKind.STUDENTS, incoming, keep={"d1|5002"})
    assert (diff.updated, diff.new, diff.deactivated) == (1, 1, 0)
    out.add("state", "d1|users.csv|7", None)
    assert [(t, k) for t, k, _ in out.records] == [
        ("students", b"d1|5001"),
        ("students", b"d1|5003"),
        ("state", b"d1|users.csv|7"),
    ]
    values = [decode_value(v) for _, _, v in out.records[:2]]
    assert {v["import_id"] for v in values} == {out.import_id}
    assert {v["imported_at"] for v in values} == {out.imported_at}
    assert values[0]["grade"] == "4"
    assert values[0]["is_active"] is True
    assert out.records[2][2] is None


def test_deactivation_republishes_the_last_fields_inactive() -> None:
    out = Publication(published({"d1|5001": doc(STUDENT, at=1)}))
    out.changes(RosterKind.STUDENTS, {})
    [(_, key, value)] = out.records
    document = decode_value(value)
    assert key == b"d1|5001"
    assert (fields_of(document), document["is_active"]) == (STUDENT, False)
    assert document["imported_at"] == out.imported_at


def test_district_docs_keeps_only_the_district_and_skips_tombstones_and_bad_records() -> None:
    good = encode_value("d1", "imp0", 1, True, STUDENT)
    raw: dict[bytes, bytes | None] = {
        b"d1|5001": good,
        b"d1": config_value(CONFIG, "imp0", 1),
        b"d10|5001": good,  # another district whose id starts the same
        b"d1|5002": None,  # a tombstone
        b"d1|5003": b"not json",
        b"d1|\xff": good,  # a key that is not UTF-8
    }
    assert sorted(district_docs(raw, "d1")) == ["d1", "d1|5001"]
