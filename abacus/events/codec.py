"""Wire formats of app events: Avro single-object encoding, JSON, and one-student batches."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import fastavro
import orjson

from abacus.events.reasons import field_label, reject
from schemas import (
    BATCH_SCHEMA_NAME,
    EVENT_TYPES,
    KnownSchema,
    fingerprint_of,
    known_schemas,
    load_schema,
)

__all__ = [
    "AVRO_MAGIC",
    "Event",
    "decode_record",
    "encode_batch",
    "encode_event",
    "encode_json",
]

Event = dict[str, Any]
AVRO_MAGIC = b"\xc3\x01"
_HEADER_LEN = len(AVRO_MAGIC) + 8
_TIMESTAMP_FIELDS = ("occurred_at", "started_at")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def encode_event(event: Mapping[str, Any]) -> bytes:
    """One event as Avro single-object encoding (magic, fingerprint, body)."""
    name = str(event["event_type"])
    if name not in EVENT_TYPES:
        raise ValueError(f"unknown event_type {name!r}")
    return _encode(name, event)


def encode_batch(events: Iterable[Mapping[str, Any]]) -> bytes:
    """A student's buffered events as ONE record holding an Avro array."""
    return _encode(BATCH_SCHEMA_NAME, {"events": list(events)})


def encode_json(event: Mapping[str, Any]) -> bytes:
    """The same record as JSON (timestamps as ISO-8601 UTC strings)."""
    return json.dumps({k: _jsonable(v) for k, v in event.items()}).encode()


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return value


def _encode(name: str, record: Mapping[str, Any]) -> bytes:
    buf = io.BytesIO()
    buf.write(AVRO_MAGIC)
    buf.write(fingerprint_of(name))
    fastavro.schemaless_writer(buf, load_schema(name), dict(record))
    return buf.getvalue()


def decode_record(payload: bytes | None) -> list[Event]:
    """Decode one Kafka record into its events (one, or many for a batch record).

    Raises InvalidEventError with a reason (`abacus.events.reasons`) when the bytes are
    not a readable event; the reason names the class and field, never the value.
    """
    if not payload:
        raise reject("undecodable", "empty record")
    if payload[:2] == AVRO_MAGIC:
        return _decode_avro(payload)
    first = payload.lstrip()[:1]
    if first in (b"{", b"["):
        return _decode_json(payload)
    raise reject("undecodable", "neither Avro single-object encoding nor JSON")


def _decode_avro(payload: bytes) -> list[Event]:
    if len(payload) < _HEADER_LEN:
        raise reject("undecodable", "truncated Avro header")
    fp = payload[2:_HEADER_LEN]
    schemas = _reading_schemas().get(fp)
    if schemas is None:
        raise reject("unknown_fingerprint", f"no known schema has fingerprint {fp.hex()}")
    known, writer, reader = schemas
    body = io.BytesIO(payload[_HEADER_LEN:])
    try:
        record = fastavro.schemaless_reader(body, writer, reader)
    except Exception as exc:  # any failure to read the body is this record's fault
        raise reject(
            "schema_mismatch", f"Avro body does not decode as {known.name} ({type(exc).__name__})"
        ) from exc
    if body.tell() != len(payload) - _HEADER_LEN:
        raise reject("schema_mismatch", f"trailing bytes after the Avro body of {known.name}")
    # fastavro builds a new dict per record: the events are ours to keep without a copy.
    events: list[Event] = record["events"] if known.is_batch else [record]  # type: ignore[index]
    for event in events:
        for key in _TIMESTAMP_FIELDS:
            millis = event.get(key)
            if millis is not None:
                event[key] = _from_millis(key, millis)
    return events


@cache
def _reading_schemas() -> dict[bytes, tuple[KnownSchema, Any, Any]]:
    """Each known fingerprint's schema and the (writer, reader) fastavro reads its records
    with. The reader is None unless the writer is an older version: resolving a schema
    against itself costs fastavro a comparison per record (half of its time). Only known
    fingerprints are kept: a stream of made-up ones must not grow a cache.

    Both are read without their logical types, so timestamps come out as epoch
    milliseconds and `_from_millis` makes the datetimes: fastavro's conversion made up a
    fifth of its decoding time.
    """
    out = {}
    for fingerprint, writer in known_schemas().items():
        reader = load_schema(writer.name)
        plain_reader = None if reader is writer.parsed else _without_logical_types(reader)
        out[fingerprint] = (writer, _without_logical_types(writer.parsed), plain_reader)
    return out


def _without_logical_types(schema: Any) -> Any:
    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: strip(v)
                for k, v in node.items()
                if k != "logicalType" and not k.startswith("__")  # fastavro's marks
            }
        if isinstance(node, list):
            return [strip(item) for item in node]
        return node

    return fastavro.parse_schema(strip(schema))


# Below 2**42 ms (the year 2109) a float of the seconds is within 0.48 µs of the instant,
# so fromtimestamp's rounding to the microsecond is exact; it is twice as fast as adding a
# timedelta, which the rest (before 1970, or far out) get.
_FLOAT_EXACT_MS = 1 << 42


def _from_millis(key: str, millis: int) -> datetime:
    if 0 <= millis < _FLOAT_EXACT_MS:
        return datetime.fromtimestamp(millis / 1000, UTC)
    try:
        return _EPOCH + timedelta(milliseconds=millis)
    except OverflowError:
        raise reject("out_of_range", f"field {key} is not a representable time") from None


def _decode_json(payload: bytes) -> list[Event]:
    # orjson, not json: it refuses what json accepts and then fails on later (nesting past
    # 1024 levels, lone surrogates, NaN, integers past 4300 digits), with a position only.
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise reject("invalid_json", f"{exc.msg[:80]} at char {exc.pos}") from exc
    items = doc if isinstance(doc, list) else doc.get("events") if "events" in doc else [doc]
    if not isinstance(items, list) or not items:
        raise reject("schema_mismatch", "a JSON batch must be a non-empty array of events")
    return [_conform_json(item) for item in items]


def _conform_json(item: Any) -> Event:
    """Validate a JSON event against the Avro schema of its type, as Avro would read it."""
    if not isinstance(item, dict):
        raise reject("schema_mismatch", "a JSON event must be an object")
    name = item.get("event_type")
    if not isinstance(name, str) or name not in EVENT_TYPES:
        raise reject("unknown_type", "field event_type is not an event type of the contract")
    event = dict(item)
    for key in _TIMESTAMP_FIELDS:
        if key in event:
            event[key] = _parse_timestamp(key, event[key])
    schema = load_schema(name)
    names = [field["name"] for field in schema["fields"]]
    for field in schema["fields"]:
        if field["name"] not in event:
            if "default" in field:
                event[field["name"]] = field["default"]
            else:
                raise reject("missing_field", f"field {field['name']} is required in {name}")
    extra = [key for key in event if key not in names]
    if extra:
        more = f" (+{len(extra) - 1} more)" if len(extra) > 1 else ""
        raise reject("unknown_field", f"field {field_label(extra[0])} is not in {name}{more}")
    if not fastavro.validation.validate(event, schema, raise_errors=False):
        bad = next((f for f in schema["fields"] if not _fits(event[f["name"]], f)), None)
        where = f"field {bad['name']}" if bad else "a field"
        raise reject("schema_mismatch", f"{where} does not fit its type in {name}")
    # Round-trip through Avro so JSON and Avro records come out identical.
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schema, event)
    buf.seek(0)
    return dict(fastavro.schemaless_reader(buf, schema, schema))  # type: ignore[arg-type]


def _fits(value: Any, field: Mapping[str, Any]) -> bool:
    """Whether one field's value fits its Avro type (only to name the field that does not)."""
    record = {"type": "record", "name": "One", "fields": [dict(field)]}
    return bool(fastavro.validation.validate({field["name"]: value}, record, raise_errors=False))


def _parse_timestamp(key: str, value: Any) -> datetime:
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return _EPOCH + timedelta(milliseconds=value)
        except OverflowError:
            raise reject("out_of_range", f"field {key} is not a representable time") from None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError as exc:
            raise reject("schema_mismatch", f"field {key} is not an ISO-8601 timestamp") from exc
        if parsed.tzinfo is None:
            raise reject("schema_mismatch", f"field {key} has no time zone; send UTC (Z)")
        try:
            return parsed.astimezone(UTC)
        except (OverflowError, ValueError):
            raise reject("out_of_range", f"field {key} is not a representable time") from None
    raise reject("schema_mismatch", f"field {key} must be an ISO-8601 string or epoch milliseconds")
