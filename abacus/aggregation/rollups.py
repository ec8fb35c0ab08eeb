"""Exact rollups: the keys to rebuild, and the SQL that rebuilds them from the facts.

Three tables, built in this order (abacus/aggregation/closing.py says when):
- `lesson_rollups`, per (district, student, lesson): attempts resolved from lesson_facts;
- `daily_rollups`, per (district, student, local day): every summed column of daily_facts;
- `monthly_rollups`, per (district, student, month): the month's daily rollups summed and
  the passes dated in it, what an export reads for every month its range covers whole.

Built whole for a district's days when they close (`close_days`), and key by key for the
late facts ingest marked dirty (`rebuild_batch` on `RollupKeys.of_late`, many batches in
one statement per table). No row is ever added to: each is recomputed from the facts (or
from the rollups before it) with FINAL, so it equals what the fact query computes for that
key at that moment. A duplicate or a replayed batch rebuilds keys to the same values; a
late or out-of-order event rebuilds its key. Each row's version counts the fact rows it was
built from; facts only grow (keyed by event_id), so a rebuild that saw more replaces one
that saw fewer, whichever is written last. Rebuilding a key that did not change is
harmless, which the lesson-pair filter relies on.

Each key statement is one `INSERT … SELECT` (one part per table) that reads the facts
through their primary key and the skip indexes of migration 0064: daily keys by student
and the days' minmax index (one branch per district), lesson pairs by student and the
pair's bloom filter.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from abacus.catalog import (
    DAILY_FACTS,
    DAILY_ROLLUPS,
    LESSON_FACTS,
    LESSON_ROLLUPS,
    MONTHLY_ROLLUPS,
    SUMMED_COLUMNS,
)
from abacus.domain.grades import GRADES_SQL

__all__ = [
    "PAIR_KEY_SQL",
    "PRODUCT_RANKS",
    "RollupKeys",
    "Statement",
    "by_students",
    "close_days",
    "pair_key",
    "rebuild_all",
    "rebuild_batch",
]

Statement = tuple[str, dict[str, Any]]
# A day's latest event as one number: occurred_at in ms * 4 + the product's rank, which
# orders products as their names do, so max() picks what argMax(product, (occurred_at,
# product)) over the facts picks. The ranks are also the bits of `products` (ever used).
PRODUCT_RANKS = {"g3plus": 1, "prek2": 2}
# lesson_facts' bloom filter index (migration 0064) is on this expression: one string per
# (student, lesson), so a batch's pairs skip the granules that hold none of them.
PAIR_KEY_SQL = "concat(student_id, '\\x1f', lesson_id)"


def pair_key(student_id: str, lesson_id: str) -> str:
    """The value of `PAIR_KEY_SQL` for one pair. Two ids joined by the separator may name
    another pair too; that only rebuilds a pair that did not change."""
    return f"{student_id}\x1f{lesson_id}"


@dataclass
class RollupKeys:
    """The rollup keys of one batch: students per (district, local day), and (student,
    lesson) pairs with the day of their earliest new fact, per district. Plain containers,
    so a batch carries them across processes."""

    days: dict[tuple[str, date], set[str]] = field(default_factory=dict)
    lessons: dict[str, dict[tuple[str, str], date]] = field(default_factory=dict)

    def add_day(self, district_id: str, student_id: str, local_date: date) -> None:
        self.days.setdefault((district_id, local_date), set()).add(student_id)

    def add_lesson(self, district_id: str, student_id: str, lesson_id: str, day: date) -> None:
        pairs = self.lessons.setdefault(district_id, {})
        key = (student_id, lesson_id)
        first = pairs.get(key)
        if first is None or day < first:
            pairs[key] = day

    def update(self, other: RollupKeys) -> None:
        for key, students in other.days.items():
            self.days.setdefault(key, set()).update(students)
        for district, pairs in other.lessons.items():
            for (student, lesson), day in pairs.items():
                self.add_lesson(district, student, lesson, day)

    def __bool__(self) -> bool:
        return bool(self.days or self.lessons)

    @classmethod
    def of_late(cls, rows: Iterable[tuple[str, str, date, str]]) -> RollupKeys:
        """The keys of `rollup_dirty` rows (district, student, day, lesson or '')."""
        keys = cls()
        for district, student, day, lesson in rows:
            if lesson:
                keys.add_lesson(district, student, lesson, day)
            else:
                keys.add_day(district, student, day)
        return keys

    @classmethod
    def of_rows(cls, daily: Iterable[Any], lessons: Iterable[Any]) -> RollupKeys:
        """The keys of `daily_facts` and `lesson_facts` rows (catalog column order)."""
        keys = cls()
        at = DAILY_FACTS.columns.index
        d, s, day = at("district_id"), at("student_id"), at("local_date")
        for row in daily:
            keys.add_day(row[d], row[s], row[day])
        at = LESSON_FACTS.columns.index
        d, s, lesson, day = at("district_id"), at("student_id"), at("lesson_id"), at("local_date")
        for row in lessons:
            keys.add_lesson(row[d], row[s], row[lesson], row[day])
        return keys


def by_students(rows: Iterable[tuple[str, str, date, str]], limit: int) -> Iterator[RollupKeys]:
    """`rollup_dirty` rows as RollupKeys of about ``limit`` rows each (more only when one
    student has more), a student's rows always together, so each rebuild statement stays
    bounded in memory and a student's months see their own days and lessons rebuilt."""
    chunk: list[tuple[str, str, date, str]] = []
    last: tuple[str, str] | None = None
    for row in sorted(rows):
        if len(chunk) >= limit and row[:2] != last:
            yield RollupKeys.of_late(chunk)
            chunk = []
        chunk.append(row)
        last = row[:2]
    if chunk:
        yield RollupKeys.of_late(chunk)


# -- the SELECTs that build rollup rows ---------------------------------------------------

_SUMS = ", ".join(f"sum({c}) AS {c}" for c in SUMMED_COLUMNS)
_RANK_SQL = "multiIf(" + "".join(f"product = '{p}', {r}, " for p, r in PRODUCT_RANKS.items()) + "0)"
# Events are validated to be from 2000 on, so their milliseconds are positive.
_LAST_KEY = f"max(toUInt64(toUnixTimestamp64Milli(occurred_at)) * 4 + {_RANK_SQL})"

_DAILY_SELECT = f"""
SELECT district_id, student_id, local_date, {_SUMS},
       {_LAST_KEY} AS last_key,
       groupBitOr(toUInt8({_RANK_SQL})) AS products,
       count() AS fact_rows
FROM {{db}}.{DAILY_FACTS.name} FINAL
WHERE {{where}}
GROUP BY district_id, student_id, local_date"""  # noqa: S608 - table names are ours

# An attempt is the run of a lesson's outcomes after each lesson_started (a start sorts
# before outcomes of the same millisecond); it passes at most once, on its first passing
# outcome. One row per (district, student, lesson) also when nothing passed, so a rebuild
# that finds an attempt split by a late start replaces the whole row.
_LESSON_SELECT = f"""
SELECT district_id, student_id, lesson_id,
       toUInt32(sum(starts)) AS attempts,
       arraySort(p -> (p.2, p.3), groupArrayIf(first, has_pass)) AS passes,
       sum(rows) AS fact_rows
FROM (
    SELECT district_id, student_id, lesson_id, attempt,
           count() AS rows,
           countIf(kind = 'start') AS starts,
           countIf(passed = 1) > 0 AS has_pass,
           argMinIf(tuple(local_date, occurred_at, kind, toString(lesson_grade_level)),
                    (occurred_at, kind), passed = 1) AS first
    FROM (
        SELECT district_id, student_id, lesson_id, occurred_at, local_date, kind, passed,
               lesson_grade_level,
               sum(kind = 'start') OVER (
                   PARTITION BY district_id, student_id, lesson_id
                   ORDER BY occurred_at, kind
                   ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
               ) AS attempt
        FROM {{db}}.{LESSON_FACTS.name} FINAL
        WHERE {{where}}
    )
    GROUP BY district_id, student_id, lesson_id, attempt
)
GROUP BY district_id, student_id, lesson_id"""  # noqa: S608 - table names are ours

# The months in {keys} (district_id, student_id, month) rebuilt from the daily and lesson
# rollups of {students} (a filter on district_id, student_id) dated {since} or later.
_MONTHLY_SELECT = f"""
SELECT k.district_id, k.student_id, k.month,
       {", ".join(f"d.{c}" for c in SUMMED_COLUMNS)}, d.last_key, d.products, p.month_passes,
       d.fact_rows + l.lesson_rows AS version
FROM ({{keys}}) AS k
LEFT JOIN (
    SELECT district_id, student_id, toStartOfMonth(local_date) AS month, {_SUMS},
           max(last_key) AS last_key, groupBitOr(products) AS products,
           sum(fact_rows) AS fact_rows
    FROM {{db}}.{DAILY_ROLLUPS.name} FINAL
    WHERE {{students}} AND local_date >= {{since}}
    GROUP BY district_id, student_id, month
) AS d ON d.district_id = k.district_id AND d.student_id = k.student_id AND d.month = k.month
LEFT JOIN (
    SELECT district_id, student_id, toStartOfMonth(pass.local_date) AS month,
           groupArray((pass.local_date, toUnixTimestamp64Milli(pass.at),
                       toUInt8(pass.kind = 'pre'), toUInt8(indexOf({GRADES_SQL}, pass.grade))))
               AS month_passes
    FROM {{db}}.{LESSON_ROLLUPS.name} FINAL
    ARRAY JOIN passes AS pass
    WHERE {{students}} AND pass.local_date >= {{since}}
    GROUP BY district_id, student_id, month
) AS p ON p.district_id = k.district_id AND p.student_id = k.student_id AND p.month = k.month
LEFT JOIN (
    SELECT district_id, student_id, sum(fact_rows) AS lesson_rows
    FROM {{db}}.{LESSON_ROLLUPS.name} FINAL
    WHERE {{students}}
    GROUP BY district_id, student_id
) AS l ON l.district_id = k.district_id AND l.student_id = k.student_id"""  # noqa: S608


def _insert(table: str, selects: Iterable[str]) -> str:
    return f"INSERT INTO {table} " + " UNION ALL ".join(selects)


# -- one batch ------------------------------------------------------------------------------


def rebuild_batch(db: str, keys: RollupKeys) -> list[Statement]:
    """The statements that rebuild a batch's keys, in order: lessons, days, months."""
    out = [
        _lesson_statement(db, keys),
        _daily_statement(db, keys),
        _monthly_statement(db, keys),
    ]
    return [s for s in out if s is not None]


def _lesson_filter(n: int) -> str:
    return (
        f"district_id = {{d{n}:String}} AND student_id IN {{ls{n}:Array(String)}}"
        f" AND {PAIR_KEY_SQL} IN {{p{n}:Array(String)}}"
    )


def _lesson_params(n: int, district: str, pairs: dict[tuple[str, str], date]) -> dict[str, Any]:
    return {
        f"d{n}": district,
        f"ls{n}": sorted({student for student, _ in pairs}),
        f"p{n}": sorted(pair_key(student, lesson) for student, lesson in pairs),
    }


def _lesson_statement(db: str, keys: RollupKeys) -> Statement | None:
    if not keys.lessons:
        return None
    params: dict[str, Any] = {}
    selects = []
    for n, (district, pairs) in enumerate(sorted(keys.lessons.items())):
        params.update(_lesson_params(n, district, pairs))
        selects.append(_LESSON_SELECT.format(db=db, where=_lesson_filter(n)))
    return _insert(f"{db}.{LESSON_ROLLUPS.name}", selects), params


def _daily_statement(db: str, keys: RollupKeys) -> Statement | None:
    """One SELECT per district: its (student, day) keys, read through the primary key (the
    students) and the days' minmax index. One `FINAL` read, not one per day: with a burst's
    parts not merged yet, a branch per day (60 days, 320 parts) took 11 s and 800 MB more
    per statement than this (`abacus bench ingest`'s catch-up, README)."""
    if not keys.days:
        return None
    by_district: dict[str, set[tuple[str, date]]] = {}
    for (district, day), students in keys.days.items():
        by_district.setdefault(district, set()).update((s, day) for s in students)
    params: dict[str, Any] = {}
    selects = []
    for n, (district, pairs) in enumerate(sorted(by_district.items())):
        params[f"d{n}"] = district
        params[f"s{n}"] = sorted({student for student, _ in pairs})
        params[f"t{n}"] = sorted({day for _, day in pairs})
        params[f"k{n}"] = sorted(pairs)
        where = (
            f"district_id = {{d{n}:String}} AND student_id IN {{s{n}:Array(String)}}"
            f" AND local_date IN {{t{n}:Array(Date)}}"
            f" AND (student_id, local_date) IN {{k{n}:Array(Tuple(String, Date))}}"
        )
        selects.append(_DAILY_SELECT.format(db=db, where=where))
    return _insert(f"{db}.{DAILY_ROLLUPS.name}", selects), params


def _monthly_statement(db: str, keys: RollupKeys) -> Statement | None:
    """Months of the batch's days, and every month from the earliest new lesson fact on that
    holds a fact of a touched lesson: a new fact at time t moves passes at t or later only,
    and only to days that hold facts of that lesson."""
    months: dict[str, set[tuple[str, date]]] = {}
    for (district, day), students in keys.days.items():
        months.setdefault(district, set()).update((s, day.replace(day=1)) for s in students)
    for district, pairs in keys.lessons.items():
        months.setdefault(district, set()).update(
            (student, day.replace(day=1)) for (student, _), day in pairs.items()
        )
    if not months:
        return None
    params: dict[str, Any] = {}
    selects = []
    for n, (district, student_months) in enumerate(sorted(months.items())):
        pairs = keys.lessons.get(district, {})
        since = min(month for _, month in student_months)
        students = sorted({s for s, _ in student_months})
        params.update(
            {f"m{n}": sorted(student_months), f"s{n}": students, f"f{n}": since, f"d{n}": district}
        )
        keys_sql = (
            f"SELECT {{d{n}:String}} AS district_id, k.1 AS student_id, k.2 AS month"  # noqa: S608
            f" FROM (SELECT arrayJoin({{m{n}:Array(Tuple(String, Date))}}) AS k)"
        )
        if pairs:
            params.update(_lesson_params(n, district, pairs))
            keys_sql = (
                f"SELECT DISTINCT district_id, student_id, month FROM ({keys_sql} UNION ALL"  # noqa: S608
                f" SELECT {{d{n}:String}}, student_id, toStartOfMonth(local_date)"
                f" FROM {db}.{LESSON_FACTS.name}"
                f" WHERE {_lesson_filter(n)} AND local_date >= {{f{n}:Date}})"
            )
        selects.append(
            _MONTHLY_SELECT.format(
                db=db,
                keys=keys_sql,
                students=f"district_id = {{d{n}:String}} AND student_id IN {{s{n}:Array(String)}}",
                since=f"{{f{n}:Date}}",
            )
        )
    return _insert(f"{db}.{MONTHLY_ROLLUPS.name}", selects), params


# -- whole days and whole students ------------------------------------------------------------

_EPOCH = date(1970, 1, 1)


def close_days(db: str, district: str, after: date | None, through: date) -> list[Statement]:
    """The statements that build the rollups of one district's days (after, through] from
    the facts, when those days close (``after`` None: every day up to ``through``), in
    order: lessons, days, months. A fact dated in those days only adds passes dated in
    them (attempts resolve in time order), so only the pairs with facts in them and the
    months holding them are rebuilt."""
    params: dict[str, Any] = {"d": district, "a": after or _EPOCH, "b": through}
    in_days = "district_id = {d:String} AND local_date > {a:Date} AND local_date <= {b:Date}"
    if after is None:
        pairs = "district_id = {d:String}"
    else:
        pairs = (
            "district_id = {d:String} AND (student_id, lesson_id) IN"  # noqa: S608
            f" (SELECT student_id, lesson_id FROM {db}.{LESSON_FACTS.name} WHERE {in_days})"
        )
    keys = (
        f"SELECT DISTINCT district_id, student_id, toStartOfMonth(local_date) AS month"  # noqa: S608
        f" FROM {db}.{DAILY_ROLLUPS.name} WHERE {in_days}"
        " UNION DISTINCT SELECT district_id, student_id, toStartOfMonth(pass.local_date)"
        f" FROM {db}.{LESSON_ROLLUPS.name} ARRAY JOIN passes AS pass"
        " WHERE district_id = {d:String} AND pass.local_date > {a:Date}"
        " AND pass.local_date <= {b:Date}"
    )
    students = f"district_id = {{d:String}} AND student_id IN (SELECT student_id FROM ({keys}))"  # noqa: S608
    monthly = _MONTHLY_SELECT.format(
        db=db, keys=keys, students=students, since="toStartOfMonth({a:Date} + 1)"
    )
    return [
        (_insert(f"{db}.{LESSON_ROLLUPS.name}", [_LESSON_SELECT.format(db=db, where=pairs)]),
         params),
        (_insert(f"{db}.{DAILY_ROLLUPS.name}", [_DAILY_SELECT.format(db=db, where=in_days)]),
         params),
        (_insert(f"{db}.{MONTHLY_ROLLUPS.name}", [monthly]), params),
    ]  # fmt: skip


def rebuild_all(db: str) -> list[str]:
    """Every rollup from every fact: the export benchmark's build (no parameters)."""
    keys = (
        f"SELECT DISTINCT district_id, student_id, toStartOfMonth(local_date) AS month"  # noqa: S608
        f" FROM {db}.{DAILY_ROLLUPS.name}"
        " UNION DISTINCT SELECT district_id, student_id, toStartOfMonth(pass.local_date)"
        f" FROM {db}.{LESSON_ROLLUPS.name} ARRAY JOIN passes AS pass"
    )
    return [
        _insert(f"{db}.{LESSON_ROLLUPS.name}", [_LESSON_SELECT.format(db=db, where="1")]),
        _insert(f"{db}.{DAILY_ROLLUPS.name}", [_DAILY_SELECT.format(db=db, where="1")]),
        _insert(
            f"{db}.{MONTHLY_ROLLUPS.name}",
            [_MONTHLY_SELECT.format(db=db, keys=keys, students="1", since="toDate('1970-01-01')")],
        ),
    ]
