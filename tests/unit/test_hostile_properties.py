"""Property: no input, random or mutated, raises past the per-record boundary.

Random bytes, mutated Avro single-object and batch records, and JSON events whose fields
are replaced, dropped or joined by arbitrary JSON go through the real path (decode,
validate, derive, encode). Each record becomes events or one dead letter with a bounded
reason; the batch itself always comes back.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from abacus.events.codec import encode_batch, encode_event, encode_json
from abacus.events.reasons import MAX_REASON_CHARS, REASON_CLASSES
from abacus.ingest.prepare import RawRecord, prepare_batch
from schemas import EVENT_TYPES
from tests.support.events import BASE_TIME, sample_event
from tests.unit.test_prepare_batch import ENCODER

NOW = BASE_TIME + timedelta(days=1)
ZONES = {"maple-valley": "America/Chicago"}
SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=12,
)
valid_events = st.sampled_from(EVENT_TYPES).map(lambda t: sample_event(t, student_id="S1"))


@st.composite
def mutated_json(draw: st.DrawFn) -> bytes:
    doc: dict[str, Any] = json.loads(encode_json(draw(valid_events)))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        action = draw(st.sampled_from(["replace", "drop", "add"]))
        name = draw(st.sampled_from(sorted(doc)) if doc else st.text(max_size=8))
        if action == "replace" or action == "add":
            key = name if action == "replace" else draw(st.text(max_size=12))
            doc[key] = draw(json_values)
        else:
            doc.pop(name, None)
    if draw(st.booleans()):
        return json.dumps([doc, json.loads(encode_json(draw(valid_events)))]).encode()
    return json.dumps(doc).encode()


@st.composite
def mutated_avro(draw: st.DrawFn) -> bytes:
    events = draw(st.lists(valid_events, min_size=1, max_size=3))
    data = bytearray(encode_batch(events) if len(events) > 1 else encode_event(events[0]))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        at = draw(st.integers(min_value=0, max_value=len(data)))
        action = draw(st.sampled_from(["flip", "insert", "delete"]))
        if action == "flip" and at < len(data):
            data[at] = draw(st.integers(min_value=0, max_value=255))
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=9))
        else:
            del data[at : at + draw(st.integers(min_value=1, max_value=9))]
    return bytes(data)


records = st.lists(
    st.one_of(st.binary(max_size=64), mutated_json(), mutated_avro()), min_size=1, max_size=8
)


def _check(values: list[bytes]) -> None:
    raw: list[RawRecord] = [(0, offset, b"S1", value) for offset, value in enumerate(values)]
    prepared = prepare_batch(raw, ZONES, NOW, ENCODER)
    positions = [offset for _, offset, _ in prepared.dead_letters]
    assert len(positions) == len(set(positions)), "one dead letter per record at most"
    for _, _, reason in prepared.dead_letters:
        assert len(reason) <= MAX_REASON_CHARS
        assert reason.split(":", 1)[0] in REASON_CLASSES
    assert set(prepared.rejected) <= REASON_CLASSES
    assert prepared.events == sum(b.rows for b in prepared.blocks if b.table == "events")


@SETTINGS
@given(records)
def test_random_and_mutated_records_never_escape_the_boundary(values: list[bytes]) -> None:
    _check(values)


@SETTINGS
@given(st.lists(mutated_json(), min_size=1, max_size=4))
def test_mutated_json_events_never_escape_the_boundary(values: list[bytes]) -> None:
    _check(values)


@SETTINGS
@given(st.lists(mutated_avro(), min_size=1, max_size=4))
def test_mutated_avro_records_never_escape_the_boundary(values: list[bytes]) -> None:
    _check(values)


def test_a_good_record_next_to_a_mutated_one_is_always_kept() -> None:
    good = sample_event("points_earned", student_id="S1")

    @SETTINGS
    @given(st.one_of(st.binary(max_size=64), mutated_json(), mutated_avro()))
    def check(bad: bytes) -> None:
        raw: list[RawRecord] = [(0, 0, b"S1", bad), (0, 1, b"S1", encode_event(good))]
        prepared = prepare_batch(raw, ZONES, NOW, ENCODER)
        assert 1 not in [offset for _, offset, _ in prepared.dead_letters]
        assert prepared.events >= 1

    check()
