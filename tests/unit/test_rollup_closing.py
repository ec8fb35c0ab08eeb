"""The rollup rules: when a day closes, which facts are late, when an export may read."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from abacus.aggregation.closing import (
    closed_through,
    late_rows,
    local_today,
    pass_due,
    rollups_cover,
)
from abacus.aggregation.rollups import RollupKeys, by_students
from abacus.catalog import DAILY_FACTS, LESSON_FACTS

CHICAGO = "America/Chicago"
GRACE = timedelta(minutes=15)


def _row(table_columns: tuple[str, ...], **values: object) -> list[object]:
    return [values.get(c) for c in table_columns]


def daily(district: str, student: str, day: date) -> list[object]:
    return _row(DAILY_FACTS.columns, district_id=district, student_id=student, local_date=day)


def lesson(district: str, student: str, lesson_id: str, day: date) -> list[object]:
    cols = LESSON_FACTS.columns
    return _row(cols, district_id=district, student_id=student, lesson_id=lesson_id, local_date=day)


@pytest.mark.parametrize(
    ("now", "closed"),
    [
        # 00:10 in Chicago (CST, UTC-6) on 3 Mar: inside the grace, 1 Mar is the last closed.
        (datetime(2026, 3, 3, 6, 10, tzinfo=UTC), date(2026, 3, 1)),
        # 00:15 exactly: 2 Mar has closed.
        (datetime(2026, 3, 3, 6, 15, tzinfo=UTC), date(2026, 3, 2)),
        # UTC already says 4 Mar, Chicago still 3 Mar at 20:00: 2 Mar is the last closed.
        (datetime(2026, 3, 4, 2, 0, tzinfo=UTC), date(2026, 3, 2)),
        # DST starts 8 Mar 2026 (CDT, UTC-5): midnight of 9 Mar is 05:00 UTC.
        (datetime(2026, 3, 9, 5, 20, tzinfo=UTC), date(2026, 3, 8)),
        (datetime(2026, 3, 9, 5, 10, tzinfo=UTC), date(2026, 3, 7)),
    ],
)
def test_a_day_closes_grace_after_local_midnight(now: datetime, closed: date) -> None:
    assert closed_through(now, CHICAGO, GRACE) == closed


def test_only_facts_of_ended_days_are_late_one_key_each() -> None:
    now = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)  # 09:00 on 3 Mar in Chicago
    today = {"maple": local_today(now, CHICAGO)}
    assert today["maple"] == date(2026, 3, 3)
    days = [
        daily("maple", "s1", date(2026, 3, 3)),  # today: not late
        daily("maple", "s1", date(2026, 3, 2)),  # late
        daily("maple", "s1", date(2026, 3, 2)),  # the same key again
        daily("maple", "s2", date(2026, 3, 4)),  # tomorrow (a device clock ahead): not late
        daily("pending", "s3", date(2026, 1, 1)),  # no config, no facts: not a key
    ]
    lessons = [
        lesson("maple", "s1", "L1", date(2026, 3, 3)),  # today
        lesson("maple", "s1", "L2", date(2026, 3, 2)),
        lesson("maple", "s1", "L2", date(2026, 2, 27)),  # the pair's earliest late day wins
    ]
    got = list(late_rows(days, lessons, today))
    assert got == [
        ("maple", "s1", date(2026, 3, 2), ""),
        ("maple", "s1", date(2026, 2, 27), "L2"),
    ]
    keys = RollupKeys.of_late(got)
    assert keys.days == {("maple", date(2026, 3, 2)): {"s1"}}
    assert keys.lessons == {"maple": {("s1", "L2"): date(2026, 2, 27)}}


@pytest.mark.parametrize(
    ("end", "closed", "pending", "done", "reads_rollups"),
    [
        (date(2026, 3, 2), date(2026, 3, 2), 7, 7, True),
        (date(2026, 3, 1), date(2026, 3, 2), 0, 0, True),  # no late key ever
        (date(2026, 3, 2), date(2026, 3, 1), 7, 7, False),  # its last day not closed yet
        (date(2026, 3, 2), None, 0, 0, False),  # the district never closed a day
        (date(2026, 3, 2), date(2026, 3, 2), 7, 6, False),  # a late key not rebuilt yet
        (date(2026, 3, 2), date(2026, 3, 2), 7, 9, True),  # rebuilt past it
    ],
)
def test_an_export_reads_rollups_only_when_they_cover_it(
    end: date, closed: date | None, pending: int, done: int, reads_rollups: bool
) -> None:
    assert rollups_cover(end, closed, pending, done) is reads_rollups


def test_late_keys_are_rebuilt_in_bounded_chunks_a_student_whole() -> None:
    day = date(2026, 3, 2)
    rows = [("maple", f"s{n}", day, "") for n in range(5)]
    rows += [("maple", "s2", day, "L1"), ("maple", "s2", date(2026, 3, 1), "")]
    chunks = list(by_students(rows, 2))
    students = [
        {s for ss in c.days.values() for s in ss} | {s for p in c.lessons.values() for s, _ in p}
        for c in chunks
    ]
    assert students == [{"s0", "s1"}, {"s2"}, {"s3", "s4"}]
    assert chunks[1].lessons == {"maple": {("s2", "L1"): day}}
    assert len(chunks[1].days) == 2  # both of s2's days, whatever the limit


@pytest.mark.parametrize(
    ("since", "backlog", "export_waiting", "due"),
    [
        (1.0, False, False, False),  # within the interval
        (5.0, False, False, True),  # the interval is over, ingest keeps up
        (5.0, True, False, False),  # ingest has a backlog: the pass waits for it
        (59.9, True, False, False),
        (60.0, True, False, True),  # ... but never longer than max_defer_s
        (0.1, True, True, True),  # an export waits: at once, backlog or not
    ],
)
def test_a_rollup_pass_waits_for_ingest_backlog_but_never_for_an_export(
    since: float, backlog: bool, export_waiting: bool, due: bool
) -> None:
    assert (
        pass_due(
            since_last_s=since, interval_s=5.0, ingest_backlog=backlog,
            export_waiting=export_waiting, max_defer_s=60.0,
        )
        is due
    )  # fmt: skip
