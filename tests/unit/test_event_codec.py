"""The event contract without a broker: Avro single-object, JSON, batches, bad bytes."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import fastavro
import pytest

import schemas
from abacus.errors import InvalidEventError
from abacus.events.codec import (
    _TIMESTAMP_FIELDS,
    AVRO_MAGIC,
    _reading_schemas,
    _without_logical_types,
    decode_record,
    encode_batch,
    encode_event,
    encode_json,
)
from abacus.events.processing import SourceRecord, process_records
from abacus.events.validate import validate_event
from schemas import EVENT_TYPES, fingerprint_of, known_schemas, load_schema
from tests.support.events import BASE_TIME, one_of_each, sample_event

NOW = BASE_TIME + timedelta(days=1)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_type_round_trips_avro_and_json(event_type: str) -> None:
    event = sample_event(event_type)
    assert decode_record(encode_event(event)) == [event]
    assert decode_record(encode_json(event)) == [event]


def test_the_timestamp_fields_are_the_ones_the_decoder_converts() -> None:
    """Avro is read without logical types and the decoder makes the datetimes of the
    fields it knows by name: every timestamp-millis field is one, and no field of
    those names is anything else."""
    found: dict[str, set[str]] = {}
    for name in EVENT_TYPES:
        for field in json.loads((Path(schemas.__file__).parent / f"{name}.avsc").read_text())[
            "fields"
        ]:
            kind = field["type"]
            logical = kind.get("logicalType", "") if isinstance(kind, dict) else ""
            found.setdefault(field["name"], set()).add(logical)
    timestamps = {n for n, kinds in found.items() if "timestamp-millis" in kinds}
    assert timestamps == set(_TIMESTAMP_FIELDS)
    assert all(found[n] == {"timestamp-millis"} for n in timestamps)


@pytest.mark.parametrize(
    "at",
    [
        datetime(1969, 12, 31, 23, 59, 59, 999_000, tzinfo=UTC),
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(2026, 3, 8, 8, 0, 0, 1_000, tzinfo=UTC),
        datetime(2109, 6, 1, 12, 34, 56, 789_000, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999_000, tzinfo=UTC),
    ],
)
def test_avro_timestamps_decode_to_the_exact_millisecond(at: datetime) -> None:
    event = {**sample_event("session_ended"), "occurred_at": at, "started_at": at}
    [back] = decode_record(encode_event(event))
    assert back["occurred_at"] == back["started_at"] == at
    assert back["occurred_at"].tzinfo is UTC


def test_an_avro_timestamp_past_what_a_datetime_holds_is_out_of_range() -> None:
    body = io.BytesIO()
    plain = _without_logical_types(load_schema("points_earned"))
    fastavro.schemaless_writer(body, plain, {**sample_event("points_earned"), "occurred_at": 2**62})
    payload = AVRO_MAGIC + fingerprint_of("points_earned") + body.getvalue()
    with pytest.raises(InvalidEventError, match="out_of_range: field occurred_at is not a repr"):
        decode_record(payload)


def test_single_object_header_is_magic_plus_fingerprint() -> None:
    event = sample_event("points_earned")
    payload = encode_event(event)
    assert payload[:2] == b"\xc3\x01"
    assert payload[2:10] == fingerprint_of("points_earned")
    assert len(known_schemas()) == len(EVENT_TYPES) + 1  # plus the batch schema


def test_known_crc64_avro_fingerprint_of_a_primitive() -> None:
    # Avro spec: the CRC-64-AVRO fingerprint of "int" is 0x8f5c393f1ad57572 (little-endian bytes).
    from fastavro.schema import fingerprint

    assert bytes.fromhex(fingerprint('"int"', "CRC-64-AVRO")) == bytes.fromhex("8f5c393f1ad57572")


def test_batch_and_json_array_hold_many_events() -> None:
    events = one_of_each()
    assert decode_record(encode_batch(events)) == events
    as_json_array = json.dumps([json.loads(encode_json(e)) for e in events]).encode()
    assert decode_record(as_json_array) == events


def test_json_timestamps_accept_iso_and_epoch_millis() -> None:
    event = sample_event("points_earned")
    doc = json.loads(encode_json(event))
    doc["occurred_at"] = int(BASE_TIME.timestamp() * 1000)
    assert decode_record(json.dumps(doc).encode())[0]["occurred_at"] == BASE_TIME


def test_optional_field_defaults_when_absent_in_json() -> None:
    doc = json.loads(encode_json(sample_event("benchmark_completed")))
    del doc["percentile_rank"]
    assert decode_record(json.dumps(doc).encode())[0]["percentile_rank"] is None


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "undecodable: empty record"),
        (b"\x00\x01\x02", "undecodable: neither Avro"),
        (AVRO_MAGIC + b"\x00" * 8 + b"\x02", "unknown_fingerprint: no known schema"),
        (AVRO_MAGIC + b"\x01", "undecodable: truncated Avro header"),
        (b"{not json", "invalid_json: "),
        (b'{"event_type": "teleported"}', "unknown_type: field event_type"),
        (b"[]", "schema_mismatch: a JSON batch must be a non-empty array"),
    ],
)
def test_unreadable_records_are_invalid_with_a_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(InvalidEventError, match=reason):
        decode_record(payload)


def test_unknown_fingerprints_are_not_remembered() -> None:
    for n in range(1000):
        with pytest.raises(InvalidEventError, match="unknown_fingerprint"):
            decode_record(AVRO_MAGIC + n.to_bytes(8, "little") + b"\x02")
    assert _reading_schemas().keys() == known_schemas().keys()


def test_avro_body_that_does_not_match_the_schema_is_invalid() -> None:
    payload = encode_event(sample_event("quiz_submitted"))
    with pytest.raises(
        InvalidEventError, match="schema_mismatch: Avro body does not decode as quiz_submitted"
    ):
        decode_record(payload[:-4])
    with pytest.raises(InvalidEventError, match="schema_mismatch: trailing bytes"):
        decode_record(payload + b"\x00")


def test_json_with_missing_or_extra_or_mistyped_fields_is_invalid() -> None:
    doc = json.loads(encode_json(sample_event("quiz_submitted")))
    with pytest.raises(InvalidEventError, match="missing_field: field score_percent"):
        decode_record(json.dumps({k: v for k, v in doc.items() if k != "score_percent"}).encode())
    with pytest.raises(InvalidEventError, match="unknown_field: field shoe_size"):
        decode_record(json.dumps({**doc, "shoe_size": 9}).encode())
    with pytest.raises(InvalidEventError, match="schema_mismatch: field score_percent"):
        decode_record(json.dumps({**doc, "score_percent": "high"}).encode())


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (sample_event("quiz_submitted", score_percent=100.5), "score_percent outside 0-100"),
        (sample_event("quiz_submitted", score_percent=-1.0), "score_percent outside 0-100"),
        (
            sample_event("session_ended", started_at=BASE_TIME + timedelta(seconds=1)),
            "field started_at is after occurred_at",
        ),
        (
            sample_event("session_ended", started_at=BASE_TIME - timedelta(hours=24, seconds=1)),
            "longer than 24 h",
        ),
        (sample_event("points_earned", occurred_at=NOW + timedelta(hours=25)), "future_timestamp"),
        (sample_event("points_earned", event_id="not-a-uuid"), "not a UUID"),
        (sample_event("lesson_started", lesson_grade_level="13"), "not a grade"),
        (sample_event("token_earned", tokens=-1), "tokens is negative"),
        (sample_event("lesson_completed", tokens_collected=6, tokens_available=5), "exceeds"),
        (sample_event("benchmark_completed", benchmark_number=4), "benchmark_number"),
        (sample_event("benchmark_completed", percentile_rank=100), "percentile_rank"),
        (sample_event("points_earned", student_id=""), "student_id"),
    ],
)
def test_out_of_range_values_are_invalid(event: dict[str, object], reason: str) -> None:
    with pytest.raises(InvalidEventError, match=reason):
        validate_event(event, now=NOW)


def test_validation_normalises_grades_and_accepts_edges() -> None:
    event = sample_event("lesson_started", lesson_grade_level="KG")
    assert validate_event(event, now=NOW)["lesson_grade_level"] == "K"
    full_day = sample_event("session_ended", started_at=BASE_TIME - timedelta(hours=24))
    assert validate_event(full_day, now=NOW) == full_day
    edge = sample_event("quiz_submitted", score_percent=100.0)
    assert validate_event(edge, now=NOW)["score_percent"] == 100.0


def _record(offset: int, value: bytes, key: bytes | None = b"S1001") -> SourceRecord:
    return SourceRecord("events", 2, offset, key, value)


def test_processing_splits_good_rows_from_dead_letters_and_dedups_in_batch() -> None:
    good = sample_event("points_earned")
    records = [
        _record(10, encode_event(good)),
        _record(11, b"\xff\xfe"),
        _record(12, encode_json(good)),  # same event_id again
        _record(13, encode_event(sample_event("points_earned", student_id="S9"))),
    ]
    batch = process_records(records, now=NOW)
    assert [row[2] for row in batch.rows] == [good["event_id"]]
    assert batch.rows[0][7:] == (2, 10, "")  # source partition, offset and epoch with the row
    assert [(d.source.offset, d.reason) for d in batch.dead_letters] == [
        (11, "undecodable: neither Avro single-object encoding nor JSON"),
        (13, "key_mismatch: record key does not match field student_id"),
    ]
    assert batch.duplicates_in_batch == 1
    assert dict(batch.rejected) == {"undecodable": 1, "key_mismatch": 1}
    assert dict(batch.accepted) == {"points_earned": 1}


def test_payload_keeps_type_specific_fields_with_millisecond_timestamps() -> None:
    event = sample_event("session_ended")
    row = process_records([_record(0, encode_event(event))], now=NOW).rows[0]
    started = event["started_at"]
    assert isinstance(started, datetime)
    assert json.loads(row[6]) == {
        "session_id": "sess-1",
        "started_at": int(started.astimezone(UTC).timestamp() * 1000),
    }
