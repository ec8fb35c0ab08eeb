"""When rollups may be built, and when an export may read them: the pure rules.

Exports only cover previous days, so the rollups hold CLOSED days only. A district's day
closes ``grace`` after its local midnight; the rollup service then builds the rollups of
every day up to it from the facts, once (`closed_through`). A fact stored for a day that
had already ended when ingest stored it is *late*: ingest writes its rollup key to
`rollup_dirty` first (`late_rows`), and the rollup service rebuilds it. Facts of today
cost ingest nothing. Exact when a batch is stored within ``grace`` of its check (ingest
checks the clock just before storing; the default grace is 15 minutes).

An export of [start, end] reads the rollups when the district's closed day has reached
``end`` and the rollup service has rebuilt every late key written before the export
started (`rollups_cover`); else it waits, then reads the facts.

The rollup service's passes are background work: while ingest has a backlog (it is
handing over full batches), a pass waits, so a burst is stored at the speed of facts alone
and rebuilt just after; it waits at most ``max_defer_s`` since the last pass, and not at
all for an export that is waiting for the rollups (`pass_due`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from abacus.catalog import DAILY_FACTS, LESSON_FACTS

__all__ = [
    "LateKey",
    "closed_through",
    "late_rows",
    "local_today",
    "pass_due",
    "rollups_cover",
]

# (district, student, local day, lesson or '' for a day key): a row of rollup_dirty.
LateKey = tuple[str, str, date, str]


def local_today(now: datetime, zone: str) -> date:
    """The district's local date at ``now`` (aware)."""
    return now.astimezone(ZoneInfo(zone)).date()


def closed_through(now: datetime, zone: str, grace: timedelta) -> date:
    """The last local day that is closed at ``now``: ended at least ``grace`` ago."""
    return local_today(now - grace, zone) - timedelta(days=1)


def late_rows(
    daily: Iterable[Any], lessons: Iterable[Any], today: dict[str, date]
) -> Iterator[LateKey]:
    """The rollup keys of the late facts among `daily_facts` and `lesson_facts` rows
    (catalog column order): (district, student, local day, lesson or '') for each fact
    whose day is before its district's ``today``; one row per key, a lesson's at its
    earliest late day. Districts not in ``today`` have no facts yet (pending)."""
    at = DAILY_FACTS.columns.index
    d, s, day = at("district_id"), at("student_id"), at("local_date")
    days = {
        (row[d], row[s], row[day], "")
        for row in daily
        if row[d] in today and row[day] < today[row[d]]
    }
    at = LESSON_FACTS.columns.index
    d, s, lesson, day = at("district_id"), at("student_id"), at("lesson_id"), at("local_date")
    pairs: dict[tuple[str, str, str], date] = {}
    for row in lessons:
        if row[d] in today and row[day] < today[row[d]]:
            key = (row[d], row[s], row[lesson])
            if key not in pairs or row[day] < pairs[key]:
                pairs[key] = row[day]
    yield from sorted(days)
    yield from sorted((d_, s_, day_, lesson_) for (d_, s_, lesson_), day_ in pairs.items())


def rollups_cover(end: date, closed: date | None, pending_seq: int, done_seq: int) -> bool:
    """Whether an export ending on ``end`` may read the rollups: its last day is closed
    (built) and every late key written before it started (up to ``pending_seq``) has been
    rebuilt (``done_seq``)."""
    return closed is not None and end <= closed and done_seq >= pending_seq


def pass_due(
    *,
    since_last_s: float,
    interval_s: float,
    ingest_backlog: bool,
    export_waiting: bool,
    max_defer_s: float,
) -> bool:
    """Whether the rollup service runs a pass now, ``since_last_s`` after its last one: at
    once for a waiting export; else every ``interval_s``, held back while ingest has a
    backlog but never past ``max_defer_s``."""
    if export_waiting:
        return True
    if since_last_s < interval_s:
        return False
    return not ingest_backlog or since_last_s >= max_defer_s
