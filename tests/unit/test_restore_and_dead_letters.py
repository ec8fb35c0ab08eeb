"""What goes back on Kafka after an embedded restart, and what a dead letter looks like."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from abacus.catalog import DISTRICTS, ROSTER_LINKS, ROSTER_STUDENTS, ROSTER_USERS
from abacus.district import load_district_config
from abacus.events.dead_letter import (
    OVERSIZED_BYTES,
    REASON,
    OutgoingDeadLetter,
    dead_letter_record,
)
from abacus.kafka.topics import topic_specs
from abacus.roster.records import (
    RosterKind,
    config_value,
    decode_value,
    district_row,
    encode_value,
    link_fields,
    record_key,
    roster_row,
    student_fields,
    user_fields,
)
from abacus.roster.restore import restored_record
from abacus.roster.validation import Student, TeacherStudentLink, User, UserType
from abacus.settings import AbacusSettings

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "district"

STUDENT = Student(
    "S1",
    date(2016, 1, 2),
    "Last",
    "First",
    "3",
    "Oak",
    "F",
    True,
    False,
    "E",
    "R",
    {"District_Data_1": "u1"},
)
USERS = [
    User("T-1", "t1", "t1@x.example", None, "Pat", "Willow", ("Oak", "Elm"), UserType.TEACHER, 2),
    User("T-2", "t2", None, None, "Rosa", None, (), UserType.DISTRICT, 3),  # blanks
]


def _published(kind: RosterKind, fields: dict[str, object], active: bool) -> tuple[bytes, bytes]:
    key = record_key("D1", kind, fields)
    return key.encode(), encode_value("D1", "imp1", 1_700_000_000_123, active, fields)


@pytest.mark.parametrize(
    ("kind", "fields", "columns"),
    [
        (RosterKind.STUDENTS, student_fields(STUDENT), ROSTER_STUDENTS.columns),
        # Published staff records carry the importer's password hash and its time, and
        # get them back from a restore (a blank one as "" and 0).
        (
            RosterKind.USERS,
            {**user_fields(USERS[0]), "password_hash": "$argon2id$v=19$x", "password_set_at": 17},
            ROSTER_USERS.columns,
        ),
        (
            RosterKind.USERS,
            {**user_fields(USERS[1]), "password_hash": "", "password_set_at": 0},
            ROSTER_USERS.columns,
        ),
        (RosterKind.LINKS, link_fields(TeacherStudentLink("T-1", "S1", 2)), ROSTER_LINKS.columns),
    ],
)
@pytest.mark.parametrize("active", [True, False])
def test_a_stored_row_is_restored_as_the_record_it_came_from(
    kind: RosterKind, fields: dict[str, object], columns: tuple[str, ...], active: bool
) -> None:
    key, value = _published(kind, fields, active)
    row = roster_row(kind, key.decode(), decode_value(value))  # what the agent stores
    assert restored_record(kind, dict(zip(columns, row, strict=True))) == (key, value)


def test_a_district_config_row_is_restored_with_the_same_config() -> None:
    config = load_district_config(EXAMPLES / "district.toml", district_id="D1")
    published = config_value(config, "imp1", 1_700_000_000_123)
    _, row = district_row("D1", decode_value(published))
    key, value = restored_record(
        RosterKind.DISTRICT, dict(zip(DISTRICTS.columns, row, strict=True))
    )
    assert key == b"D1"
    restored, original = decode_value(value), decode_value(published)
    assert restored["config"] == original["config"]
    assert restored["imported_at"] == original["imported_at"]
    assert restored["import_id"] == "restored"


def _letter(value: bytes, key: bytes | None = b"S1", limit: int = 10_000) -> OutgoingDeadLetter:
    return dead_letter_record(
        key=key,
        value=value,
        reason="schema_mismatch: field points does not fit",
        topic="events",
        partition=3,
        offset=42,
        epoch="ep1",
        failed_at="2026-12-01T00:00:00",
        max_bytes=limit,
    )


def test_a_dead_letter_that_fits_carries_the_original_bytes_and_its_source() -> None:
    letter = _letter(b"x" * 100)
    assert letter.value == b"x" * 100
    headers = dict(letter.headers)
    assert headers[REASON] == b"schema_mismatch: field points does not fit"
    assert headers["abacus.source.offset"] == b"42"
    assert headers["abacus.source.epoch"] == b"ep1"
    assert OVERSIZED_BYTES not in headers


def test_a_dead_letter_too_large_becomes_a_small_pointer() -> None:
    letter = _letter(b"x" * 20_000, key=b"k" * 5000)
    assert letter.value == b""
    assert letter.key is None, "a huge key is dropped too"
    assert letter.size < 1000
    headers = dict(letter.headers)
    assert headers[REASON].startswith(b"oversized: ")
    assert b"(was: schema_mismatch" in headers[REASON]
    assert int(headers[OVERSIZED_BYTES]) > 25_000
    assert headers["abacus.source.partition"] == b"3"


def test_events_and_dead_letters_have_explicit_retention() -> None:
    specs = {s.name: s.topic_configs for s in topic_specs(AbacusSettings())}
    assert specs["events"]["retention.ms"] == str(7 * 24 * 3600 * 1000)
    # Finite: the bound a deletion states for a student's dead letters on the topic (the
    # dead_letters table keeps them until replayed, and deletes a student's).
    assert specs["events-dlq"]["retention.ms"] == str(30 * 24 * 3600 * 1000)
    for name in ("roster-users", "roster-students", "district-config", "abacus-meta"):
        assert specs[name]["cleanup.policy"] == "compact"
        assert specs[name]["max.compaction.lag.ms"] == str(24 * 3600 * 1000)
    assert specs["privacy-deny"]["cleanup.policy"] == "compact"
    assert specs["privacy-requests"]["retention.ms"] == str(7 * 24 * 3600 * 1000)


def test_the_deny_list_is_restored_to_its_topic_when_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from datetime import UTC, datetime

    import streams.restore as restore
    from abacus.privacy.deny import DenyEntry, encode_entry

    at = datetime(2026, 3, 1, tzinfo=UTC)
    entries = [DenyEntry("maple", "S1", "del-1", at), DenyEntry("maple", "", "del-2", at)]
    present_key, present_value = encode_entry(entries[0])
    sent: list[tuple[str, bytes, bytes | None]] = []

    class Store:
        def has_rows(self, table: object) -> bool:
            return True

        def load_deny(self) -> list[DenyEntry]:
            return entries

    settings = AbacusSettings(topics={"prefix": "t."})
    monkeypatch.setattr(
        restore, "read_latest", lambda s, topics: {topics[0]: {present_key: present_value}}
    )
    monkeypatch.setattr(restore, "publish", lambda s, records: sent.extend(records))
    assert restore._restore_deny(settings, Store()) == {"t.privacy-deny": 1}  # type: ignore[arg-type]
    assert sent == [("t.privacy-deny", *encode_entry(entries[1]))]
