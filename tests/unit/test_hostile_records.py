"""No record, whatever its bytes, escapes the per-record boundary of the ingest path.

Each case here stopped ingestion for good before the boundary existed (the worker exited,
re-read the same batch and exited again). Now every one becomes a dead letter with a short
reason naming the class and the field, never the value, and the good events around it
are kept.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from abacus.events.codec import encode_event, encode_json
from abacus.events.processing import SourceRecord, process_records
from abacus.events.reasons import MAX_REASON_CHARS, REASON_CLASSES
from abacus.ingest.prepare import RawRecord, prepare_batch
from abacus.store.native import NativeEncoder
from tests.support.events import BASE_TIME, sample_event
from tests.unit.test_prepare_batch import ENCODER, _migrated_types

NOW = BASE_TIME + timedelta(days=1)
TZ = "America/Chicago"


def _json_with(**fields: object) -> bytes:
    doc = json.loads(encode_json(sample_event("points_earned", student_id="S1")))
    doc.update(fields)
    return json.dumps(doc).encode()


def _json_raw(field: str, literal: str) -> bytes:
    """A JSON event whose ``field`` holds ``literal`` verbatim (json.dumps cannot write it)."""
    doc = json.loads(encode_json(sample_event("points_earned", student_id="S1")))
    doc[field] = "@@"
    return json.dumps(doc).encode().replace(b'"@@"', literal.encode())


HOSTILE: dict[str, bytes] = {
    "array nested 100k deep": b"[" * 100_000 + b"]" * 100_000,
    "object nested 100k deep": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    "integer of 5000 digits": _json_raw("points", "9" * 5000),
    "epoch 10**20": _json_with(occurred_at=10**20),
    "epoch -10**15": _json_with(occurred_at=-(10**15)),
    "year 1 with an offset": _json_with(occurred_at="0001-01-01T00:00:00+01:00"),
    "year 9999 behind UTC": _json_with(occurred_at="9999-12-31T23:59:59-01:00"),
    "lone surrogate in student_id": _json_raw("student_id", '"\\ud800"'),
    "lone surrogate in event_id": _json_raw("event_id", '"\\udfff"'),
    "lone surrogate in a key": _json_raw("\\ud800", "1"),
    "600 KB event_id": _json_with(event_id="e" * 600_000),
    "1 MiB of garbage": b"\x07" * (1 << 20),
    "1 MiB unknown field name": _json_raw("x" * (1 << 20), "1"),
    "NaN score": _json_raw("points", "NaN"),
    "bool as points": _json_with(points=True),
    "float as points": _json_with(points=1e300),
    "list as event": b"[1, 2, 3]",
    "string event": b'["x"]',
    "null student": _json_with(student_id=None),
    "event_type not a string": _json_with(event_type=["points_earned"]),
    "huge started_at on a session": json.dumps(
        {
            **json.loads(encode_json(sample_event("session_ended", student_id="S1"))),
            "started_at": -(10**18),
        }
    ).encode(),
}


def _records(bad: bytes) -> list[SourceRecord]:
    good = [sample_event("points_earned", student_id="S1", points=i) for i in range(2)]
    return [
        SourceRecord("events", 0, 0, b"S1", encode_event(good[0])),
        SourceRecord("events", 0, 1, b"S1", bad),
        SourceRecord("events", 0, 2, b"S1", encode_json(good[1])),
    ]


@pytest.mark.parametrize("bad", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_record_becomes_one_dead_letter_with_a_short_reason(bad: bytes) -> None:
    batch = process_records(_records(bad), now=NOW)
    assert [d.source.offset for d in batch.dead_letters] == [1]
    assert len(batch.events) == 2
    reason = batch.dead_letters[0].reason
    assert len(reason) <= MAX_REASON_CHARS
    assert reason.split(":")[0] in REASON_CLASSES
    assert set(batch.rejected) <= REASON_CLASSES
    for echo in ("eeeeeeeeee", "xxxxxxxxxx", "9999999999", "\ud800", "\x07"):
        assert echo not in reason, "a reason must never echo the value"


@pytest.mark.parametrize("bad", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_record_never_stops_batch_preparation(bad: bytes) -> None:
    raw: list[RawRecord] = [(r.partition, r.offset, r.key, r.value) for r in _records(bad)]
    prepared = prepare_batch(raw, {"maple-valley": TZ}, NOW, ENCODER)
    assert [(p, o) for p, o, _ in prepared.dead_letters] == [(0, 1)]
    assert prepared.events == 2
    assert {b.table for b in prepared.blocks} == {"events", "daily_facts"}


def test_reasons_name_the_field_and_never_the_value() -> None:
    cases = {
        "out_of_range: field points": _json_with(points=-5),
        "schema_mismatch: field points": _json_with(points="many"),
        "out_of_range: field event_id": _json_with(event_id="not-a-uuid-SECRET"),
        "missing_field: field points": json.dumps(
            {k: v for k, v in json.loads(_json_with()).items() if k != "points"}
        ).encode(),
        "out_of_range: field occurred_at": _json_with(occurred_at=10**18),
        "schema_mismatch: field occurred_at": _json_with(occurred_at=10**20),
        "unknown_type: field event_type": _json_with(event_type="SECRET_TYPE"),
        "unknown_field: field extra_thing": _json_with(extra_thing="SECRET"),
    }
    for expected, payload in cases.items():
        batch = process_records([SourceRecord("events", 0, 0, b"S1", payload)], now=NOW)
        assert batch.dead_letters[0].reason.startswith(expected), expected
        assert "SECRET" not in batch.dead_letters[0].reason


def test_an_event_whose_facts_cannot_be_derived_is_dead_lettered_alone() -> None:
    # A district zone the engine cannot load: its events cannot be derived; others can.
    broken = sample_event("points_earned", district_id="broken", student_id="S1")
    fine = sample_event("points_earned", district_id="maple-valley", student_id="S1")
    raw: list[RawRecord] = [(0, 0, b"S1", encode_event(broken)), (0, 1, b"S1", encode_event(fine))]
    prepared = prepare_batch(raw, {"maple-valley": TZ, "broken": "Not/AZone"}, NOW, ENCODER)
    assert prepared.dead_letters == [
        (0, 0, "internal_error: ZoneInfoNotFoundError while deriving facts")
    ]
    assert prepared.events == 1
    assert {b.table: b.rows for b in prepared.blocks} == {"events": 1, "daily_facts": 1}
    assert dict(prepared.rejected) == {"internal_error": 1}
    assert dict(prepared.accepted) == {"points_earned": 1}


def test_an_event_whose_rows_do_not_fit_the_columns_is_dead_lettered_alone() -> None:
    # A narrower column than the migrations give: 1000 points no longer fit, 5 still do.
    types = _migrated_types()
    types["daily_facts"]["points"] = "UInt8"
    narrow = NativeEncoder(types)
    big = sample_event("points_earned", student_id="S1", points=1000)
    small = sample_event("points_earned", student_id="S1", points=5)
    raw: list[RawRecord] = [(0, 0, b"S1", encode_event(big)), (0, 1, b"S1", encode_event(small))]
    prepared = prepare_batch(raw, {"maple-valley": TZ}, NOW, narrow)
    assert prepared.dead_letters == [(0, 0, "internal_error: a value does not fit its column")]
    assert {b.table: b.rows for b in prepared.blocks} == {"events": 1, "daily_facts": 1}
