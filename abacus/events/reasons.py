"""Dead-letter reasons: a bounded class label and the field, never the value (pure).

A reason is ``"<class>: <detail>"``. The class is one of `REASON_CLASSES` (it is also the
``reason`` label of `abacus_events_rejected_total`, so the metric stays bounded); the
detail names the field and the rule broken, in our own words. Nothing a producer sent is
echoed: a value may be personal, and a dead letter's headers must stay small (a 600 KB
``event_id`` echoed into a header made the dead letter too large to deliver).
"""

from __future__ import annotations

import re

from abacus.errors import InvalidEventError

__all__ = [
    "MAX_REASON_CHARS",
    "REASON_CLASSES",
    "cap",
    "field_label",
    "reject",
    "unexpected",
]

MAX_REASON_CHARS = 200
REASON_CLASSES = frozenset(
    {
        "undecodable",  # neither Avro single-object encoding nor JSON, or empty
        "invalid_json",  # starts like JSON but does not parse (syntax, depth, numbers, text)
        "unknown_fingerprint",  # Avro from a writer schema we do not know
        "schema_mismatch",  # does not fit the schema of its type (Avro body or JSON field)
        "unknown_type",  # event_type is not one of the contract's types
        "missing_field",  # a required field is absent
        "unknown_field",  # a JSON field the schema does not have
        "out_of_range",  # fits the schema, breaks a rule (range, relation, UUID, grade)
        "future_timestamp",  # occurred_at more than 24 h ahead
        "key_mismatch",  # the record key is not the event's student_id
        "internal_error",  # an unexpected exception inside the per-record boundary (a bug)
        "oversized",  # the dead letter itself was too large; a pointer was sent instead
        "poison_batch",  # the batch crashed the worker repeatedly; quarantined whole
    }
)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}")


def cap(text: str) -> str:
    """At most MAX_REASON_CHARS characters, marked with an ellipsis when cut."""
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 1] + "…"


def field_label(name: object) -> str:
    """A field name fit to print: ours always are; a stranger's only if short and plain."""
    return name if isinstance(name, str) and _NAME.fullmatch(name) else "(unnamed)"


def reject(label: str, detail: str) -> InvalidEventError:
    """The error that dead-letters a record: ``label`` from REASON_CLASSES, ``detail`` ours."""
    assert label in REASON_CLASSES, label
    return InvalidEventError(cap(f"{label}: {detail}"), label=label)


def unexpected(exc: BaseException, stage: str) -> InvalidEventError:
    """An exception nobody planned for, at the per-record boundary: named by class only."""
    return reject("internal_error", f"{type(exc).__name__} while {stage}")
