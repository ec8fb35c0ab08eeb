"""Batch preparation for the ingest processes: Native blocks that decode back to the rows
the pure pipeline derives, pending marks for unknown districts, dead letters by position."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from clickhouse_connect.driver.transform import NativeTransform
from clickhouse_connect.driverc.buffer import ResponseBuffer

from abacus.aggregation.derive import DAILY_COLUMNS, derive_facts
from abacus.events.codec import encode_batch, encode_event
from abacus.events.processing import EVENT_COLUMNS, SourceRecord, process_records
from abacus.ingest.prepare import STORED_TABLES, RawRecord, prepare_batch
from abacus.store.native import EncodedBlock, NativeEncoder
from tests.support.events import BASE_TIME, one_of_each, sample_event

NOW = BASE_TIME + timedelta(days=1)
TZ = "America/Chicago"
MIGRATIONS = Path(__file__).parents[2] / "abacus" / "store" / "migrations"


def _migrated_types() -> dict[str, dict[str, str]]:
    """Column types as the migrations create them (what `system.columns` reports)."""
    tables: dict[str, dict[str, str]] = {}
    pattern = re.compile(r"CREATE TABLE IF NOT EXISTS \{db\}\.(\w+)\s*\((.*?)\n\)", re.S)
    for sql in sorted(MIGRATIONS.glob("*.sql")):
        for name, body in pattern.findall(sql.read_text()):
            columns = tables.setdefault(name, {})
            for line in body.strip().splitlines():
                line = line.split("--")[0].strip().rstrip(",")
                if not line:
                    continue
                column, type_name = line.split(None, 1)
                columns[column] = re.split(r" (?:CODEC|DEFAULT)\b", type_name)[0].strip()
        added = re.compile(
            r"ALTER TABLE \{db\}\.(\w+) ADD COLUMN IF NOT EXISTS (\w+) (.+?) DEFAULT"
        )
        for name, column, type_name in added.findall(sql.read_text()):
            tables.setdefault(name, {})[column] = type_name.strip()
    return tables


ENCODER = NativeEncoder(_migrated_types())


def _decode(block: EncodedBlock) -> list[tuple[Any, ...]]:
    class _Source:
        def __init__(self, data: bytes) -> None:
            self.gen = iter([data])

        def close(self) -> None:
            pass

    result = NativeTransform.parse_response(ResponseBuffer(_Source(block.data)))
    assert tuple(result.column_names) == block.columns
    return list(result.result_rows)


def _by_table(blocks: list[EncodedBlock]) -> dict[str, EncodedBlock]:
    return {b.table: b for b in blocks}


def test_migrations_define_every_stored_table() -> None:
    assert set(STORED_TABLES) <= set(ENCODER.types)


def test_blocks_decode_back_to_the_rows_of_the_pure_pipeline() -> None:
    events = one_of_each(district_id="D1", student_id="S1")
    records: list[RawRecord] = [(1, 100 + i, b"S1", encode_event(e)) for i, e in enumerate(events)]
    prepared = prepare_batch(records, {"D1": TZ}, NOW, ENCODER)

    sources = [SourceRecord("", p, o, k, v) for p, o, k, v in records]
    expected = process_records(sources, now=NOW)
    facts = derive_facts(expected.events, lambda e: TZ)
    blocks = _by_table(prepared.blocks)
    assert set(blocks) == {"events", "daily_facts", "lesson_facts", "benchmark_facts"}

    stored_events = _decode(blocks["events"])
    assert [str(r[2]) for r in stored_events] == [r[2] for r in expected.rows]
    assert [r[6:] for r in stored_events] == [r[6:] for r in expected.rows]  # payload, source
    assert [r[5] for r in stored_events] == [e["occurred_at"].replace(tzinfo=None) for e in events]

    stored_daily = _decode(blocks["daily_facts"])
    metrics = DAILY_COLUMNS.index("school_ms")
    assert [(str(r[3]), r[2], r[metrics:]) for r in stored_daily] == [
        (r[3], r[2], tuple(r[metrics:])) for r in facts.daily
    ]
    assert [r[6] for r in _decode(blocks["lesson_facts"])] == [r[6] for r in facts.lessons]
    assert blocks["benchmark_facts"].rows == 1
    assert prepared.events == len(events)
    assert prepared.pending_districts == set()
    assert sum(prepared.accepted.values()) == len(events)


def test_unknown_districts_are_stored_with_pending_marks_and_no_facts() -> None:
    known = sample_event("points_earned", district_id="D1", student_id="S1")
    unknown = [sample_event("points_earned", district_id="D2", student_id="S2") for _ in range(3)]
    records: list[RawRecord] = [
        (0, 1, b"S1", encode_event(known)),
        (0, 2, b"S2", encode_batch(unknown)),
    ]
    prepared = prepare_batch(records, {"D1": TZ}, NOW, ENCODER)
    blocks = _by_table(prepared.blocks)
    assert blocks["events"].rows == 4
    assert blocks["daily_facts"].rows == 1
    marks = _decode(blocks["pending_facts"])
    assert sorted((d, str(i), r) for d, i, r in marks) == sorted(
        ("D2", e["event_id"], 0) for e in unknown
    )
    assert prepared.pending_districts == {"D2"}


def test_bad_records_come_back_as_positions_with_reasons() -> None:
    good = sample_event("points_earned", student_id="S1")
    records: list[RawRecord] = [
        (3, 7, b"S1", encode_event(good)),
        (3, 8, b"S1", b"\x00garbage"),
        (4, 9, b"S1", encode_event(good)),  # the same event again, in another partition
    ]
    prepared = prepare_batch(records, {}, NOW, ENCODER)
    assert prepared.dead_letters == [
        (3, 8, "undecodable: neither Avro single-object encoding nor JSON")
    ]
    assert prepared.duplicates_in_batch == 1
    assert dict(prepared.rejected) == {"undecodable": 1}
    assert _by_table(prepared.blocks)["events"].rows == 1


def test_a_batch_of_only_bad_records_has_no_blocks() -> None:
    prepared = prepare_batch([(0, 0, None, b"")], {"D1": TZ}, NOW, ENCODER)
    assert prepared.blocks == []
    assert prepared.dead_letters == [(0, 0, "undecodable: empty record")]


def test_encoder_refuses_columns_it_does_not_know() -> None:
    with pytest.raises(ValueError, match=r"no column types known for events\.nope"):
        ENCODER.encode("events", ["nope"], [["x"]])
    with pytest.raises(ValueError, match="no column types known for table missing"):
        ENCODER.encode("missing", ["a"], [[1]])
    assert ENCODER.encode("events", EVENT_COLUMNS, []).rows == 0


def test_an_ingest_process_never_imports_the_dataframe_libraries() -> None:
    # In a fresh interpreter, as an ingest process starts: encoding must not pull in
    # numpy/pandas/pyarrow (installed with chDB; ~100 MB and ~0.7 s per process).
    script = (
        "import sys\n"
        "from abacus.ingest.prepare import start_process, prepare_in_process\n"
        "from tests.unit.test_prepare_batch import _migrated_types, NOW\n"
        "from tests.support.events import one_of_each\n"
        "from abacus.events.codec import encode_event\n"
        "start_process(_migrated_types())\n"
        "events = one_of_each(district_id='D1', student_id='S1')\n"
        "records = [(0, i, b'S1', encode_event(e)) for i, e in enumerate(events)]\n"
        "prepared = prepare_in_process(records, {'D1': 'America/Chicago'}, NOW)\n"
        "assert prepared.events == len(events), prepared\n"
        "print(sorted(m for m in ('numpy', 'pandas', 'pyarrow') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parents[2],
        check=True,
    )
    assert done.stdout.strip() == "[]"


def test_events_of_denied_students_are_dropped_and_counted_never_dead_lettered() -> None:
    from abacus.privacy.deny import DenyEntry, DenyList

    reenabled = BASE_TIME + timedelta(hours=1)
    deny = DenyList([
        DenyEntry("D1", "S1", "del-1", BASE_TIME),
        DenyEntry("D1", "S3", "del-1", BASE_TIME, reenabled_at=reenabled),
    ])  # fmt: skip
    gone = one_of_each(district_id="D1", student_id="S1")
    kept = sample_event("points_earned", district_id="D1", student_id="S2")
    old = sample_event("points_earned", district_id="D1", student_id="S3")
    fresh = sample_event("points_earned", district_id="D1", student_id="S3", occurred_at=reenabled)
    other = sample_event("points_earned", district_id="D2", student_id="S1")
    records: list[RawRecord] = [
        (0, 1, b"S1", encode_batch(gone)),
        (0, 2, b"S2", encode_event(kept)),
        (0, 3, b"S3", encode_batch([old, fresh])),
        (0, 4, b"S1", encode_event(other)),
    ]
    batch_deny = deny.for_keys(r[2] for r in records)
    prepared = prepare_batch(records, {"D1": TZ, "D2": TZ}, NOW, ENCODER, deny=batch_deny)
    assert prepared.denied == len(gone) + 1
    assert prepared.dead_letters == []
    stored = {str(r[2]) for r in _decode(_by_table(prepared.blocks)["events"])}
    assert stored == {kept["event_id"], fresh["event_id"], other["event_id"]}
    assert sum(prepared.accepted.values()) == 3
    assert prepared.events == 3
    # Without a deny-list nothing is dropped.
    assert prepare_batch(records, {"D1": TZ, "D2": TZ}, NOW, ENCODER).events == len(gone) + 4
    # Dead letters: the worker drops a denied student's (named inside, or by key).
    assert deny.record_denied(b"S2", encode_event(gone[0]), NOW)
    assert deny.record_denied(b"S1", b"\x00garbage", NOW)
    assert not deny.record_denied(b"S2", b"\x00garbage", NOW)


def test_a_batch_of_lesson_facts_alone_still_marks_their_late_rollup_keys() -> None:
    # lesson_completed derives a lesson fact and no daily fact: a batch whose only event of
    # a configured district is one still names its (student, lesson) key when its day has
    # ended, or a lesson rollup built before it would miss the pass for good.
    done = sample_event("lesson_completed", district_id="D1", student_id="S1")
    today = sample_event("lesson_completed", district_id="D1", student_id="S2", occurred_at=NOW)
    pending = sample_event("lesson_completed", district_id="D2", student_id="S3")
    records: list[RawRecord] = [
        (0, 1, b"S1", encode_event(done)),
        (0, 2, b"S2", encode_event(today)),
        (0, 3, b"S3", encode_event(pending)),
    ]
    prepared = prepare_batch(records, {"D1": TZ}, NOW, ENCODER)
    blocks = _by_table(prepared.blocks)
    assert "daily_facts" not in blocks
    assert blocks["lesson_facts"].rows == 2
    day = BASE_TIME.astimezone(ZoneInfo(TZ)).date()
    assert prepared.late_keys == [("D1", "S1", day, done["lesson_id"])]
