"""Wire formats of app events: Avro single-object encoding, JSON, and one-student batches."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import fastavro

from abacus.errors import InvalidEventError
from schemas import BATCH_SCHEMA_NAME, EVENT_TYPES, fingerprint_of, known_schemas, load_schema

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

    Raises InvalidEventError with a reason when the bytes are not a readable event.
    """
    if not payload:
        raise InvalidEventError("empty record")
    if payload[:2] == AVRO_MAGIC:
        return _decode_avro(payload)
    first = payload.lstrip()[:1]
    if first in (b"{", b"["):
        return _decode_json(payload)
    raise InvalidEventError("undecodable bytes: neither Avro single-object encoding nor JSON")


def _decode_avro(payload: bytes) -> list[Event]:
    if len(payload) < _HEADER_LEN:
        raise InvalidEventError("truncated Avro header")
    fp = payload[2:_HEADER_LEN]
    writer = known_schemas().get(fp)
    if writer is None:
        raise InvalidEventError(f"unknown schema fingerprint {fp.hex()}")
    reader = load_schema(writer.name)
    body = io.BytesIO(payload[_HEADER_LEN:])
    try:
        record = fastavro.schemaless_reader(body, writer.parsed, reader)
    except Exception as exc:
        raise InvalidEventError(f"Avro body does not match schema {writer.name}: {exc}") from exc
    if body.tell() != len(payload) - _HEADER_LEN:
        raise InvalidEventError(f"trailing bytes after Avro body of {writer.name}")
    if writer.is_batch:
        return [dict(e) for e in record["events"]]  # type: ignore[index]
    return [dict(record)]  # type: ignore[arg-type]


def _decode_json(payload: bytes) -> list[Event]:
    try:
        doc = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidEventError(f"invalid JSON: {exc}") from exc
    items = doc if isinstance(doc, list) else doc.get("events") if "events" in doc else [doc]
    if not isinstance(items, list) or not items:
        raise InvalidEventError("JSON batch must be a non-empty array of events")
    return [_conform_json(item) for item in items]


def _conform_json(item: Any) -> Event:
    """Validate a JSON event against the Avro schema of its type, as Avro would read it."""
    if not isinstance(item, dict):
        raise InvalidEventError("JSON event must be an object")
    name = item.get("event_type")
    if name not in EVENT_TYPES:
        raise InvalidEventError(f"unknown event type {name!r}")
    event = dict(item)
    for key in _TIMESTAMP_FIELDS:
        if key in event:
            event[key] = _parse_timestamp(key, event[key])
    schema = load_schema(str(name))
    for field in schema["fields"]:
        if field["name"] not in event:
            if "default" in field:
                event[field["name"]] = field["default"]
            else:
                raise InvalidEventError(f"missing field {field['name']!r} in {name}")
    extra = set(event) - {f["name"] for f in schema["fields"]}
    if extra:
        raise InvalidEventError(f"unknown fields {sorted(extra)} in {name}")
    if not fastavro.validation.validate(event, schema, raise_errors=False):
        raise InvalidEventError(f"JSON event does not match schema {name}")
    # Round-trip through Avro so JSON and Avro records come out identical.
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schema, event)
    buf.seek(0)
    return dict(fastavro.schemaless_reader(buf, schema, schema))  # type: ignore[arg-type]


def _parse_timestamp(key: str, value: Any) -> datetime:
    if isinstance(value, bool):
        raise InvalidEventError(f"{key} must be an ISO-8601 string or epoch milliseconds")
    if isinstance(value, int):
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError as exc:
            raise InvalidEventError(f"{key} is not an ISO-8601 timestamp") from exc
        if parsed.tzinfo is None:
            raise InvalidEventError(f"{key} has no time zone; send UTC (Z)")
        return parsed.astimezone(UTC)
    raise InvalidEventError(f"{key} must be an ISO-8601 string or epoch milliseconds")
