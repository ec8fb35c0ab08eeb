"""The event contract as Avro schemas (`*.avsc`), shipped as package data, with fingerprints."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

__all__ = [
    "BATCH_SCHEMA_NAME",
    "EVENT_TYPES",
    "KnownSchema",
    "fingerprint_of",
    "known_schemas",
    "load_schema",
]

# The order is the union order inside event_batch.avsc; append new types at the end.
EVENT_TYPES: tuple[str, ...] = (
    "session_started",
    "session_ended",
    "lesson_started",
    "quiz_submitted",
    "lesson_completed",
    "problem_attempted",
    "token_earned",
    "points_earned",
    "math_help_used",
    "live_help_session",
    "benchmark_completed",
)
BATCH_SCHEMA_NAME = "event_batch"


@dataclass(frozen=True)
class KnownSchema:
    """A writer schema this service can read: its name, parsed form and CRC-64-AVRO fingerprint."""

    name: str
    parsed: Any
    fingerprint: bytes

    @property
    def is_batch(self) -> bool:
        return self.name == BATCH_SCHEMA_NAME


@cache
def load_schema(name: str) -> Any:
    """Parse ``schemas/<name>.avsc`` (current version)."""
    text = resources.files(__name__).joinpath(f"{name}.avsc").read_text(encoding="utf-8")
    return fastavro.parse_schema(json.loads(text))


def _fingerprint(parsed: Any) -> bytes:
    # Single-object encoding carries the CRC-64-AVRO of the canonical form, little-endian,
    # which is the byte order fastavro's hex string already has (as Java's implementation).
    return bytes.fromhex(fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO"))


@cache
def known_schemas() -> dict[bytes, KnownSchema]:
    """Every readable writer schema keyed by its 8-byte fingerprint.

    Older versions of a schema go in ``schemas/history/`` when one evolves; they stay
    readable here and are resolved against the current reader schema.
    """
    out: dict[bytes, KnownSchema] = {}
    for name in (*EVENT_TYPES, BATCH_SCHEMA_NAME):
        parsed = load_schema(name)
        out[_fingerprint(parsed)] = KnownSchema(name, parsed, _fingerprint(parsed))
    return out


@cache
def fingerprint_of(name: str) -> bytes:
    """The fingerprint of the current version of schema ``name``."""
    return _fingerprint(load_schema(name))
