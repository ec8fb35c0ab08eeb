"""`abacus bench export`: the export consumer against two ClickHouse baselines.

Everything happens in this process: chDB (one data path per process) in a fresh temp
home, synthetic facts generated inside ClickHouse (INSERT … SELECT from numbers_mt), the
rollups built from them (`abacus.aggregation.rollups.rebuild_all`), then OPTIMIZE … FINAL
so the export reads merged parts as a steady-state system does. Two baselines:
- `baseline` (kept for continuity): the export query over the raw facts
  (`export_sql(db, "facts")`) with `FORMAT CSVWithNames`, ClickHouse writing the CSV;
- `floor`: ClickHouse writing the finished rows (the product's own file, loaded into a
  plain table of String columns) with CSVWithNames: what producing this file costs at least.
The product is `ExportConsumer.run`, reading the rollups; it runs again afterwards in a
process of its own that only opens the store and exports, as a worker does (this process
generated the data set, peaking at GBs, and runs the baseline between product runs), which
gives the export's own time and peak RSS. Before timing, the rollup query's
CSVWithNames answer is compared byte for byte with the facts query's (`rollups_equal_facts`).
Runs alternate baseline, floor, product, … and the medians are compared.

Data density (documented, per student and school day): 3 `daily_facts` rows (a session
piece, a lesson start with its problems and helps, a quiz or a lesson completion with its
points or tokens) and 2 `lesson_facts` rows (start and outcome), plus 1-3 benchmark
results per student. 100k students x 180 days = 54M daily + 36M lesson fact rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import multiprocessing
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console

from abacus.bench.report import report
from abacus.catalog import DAILY_ROLLUPS, LESSON_ROLLUPS, MONTHLY_ROLLUPS
from abacus.district import DistrictConfig
from abacus.domain.grades import GRADES_SQL
from abacus.export.query import export_sql
from abacus.settings import AbacusSettings, ClickHouseSettings
from abacus.store.store import Store
from consumers.export import ExportConsumer, ExportJob

__all__ = [
    "ADMIN",
    "DAILY_ROWS_PER_DAY",
    "DISTRICT",
    "LESSON_ROWS_PER_DAY",
    "generate",
    "peak_rss_mb",
    "run_export_bench",
]

# The rollups the product reads, built from the generated facts before timing.
ROLLUP_TABLES = (LESSON_ROLLUPS.name, DAILY_ROLLUPS.name, MONTHLY_ROLLUPS.name)
# The floor baseline's plain table: benchmark-only, in the benchmark's throwaway store.
FLOOR_TABLE = "bench_export_floor"

DISTRICT = "bench-district"
YEAR_START = date(2025, 8, 15)
FIRST_DAY = date(2025, 8, 18)  # the first Monday of the school year
MAX_DAYS = 250  # school days (Mon-Fri) that fit before the next school year starts
DAILY_ROWS_PER_DAY = 3
LESSON_ROWS_PER_DAY = 2
RUNS = 3
ADMIN = "D0001"
_SYLLABLES = "['Ba','Co','Da','El','Fa','Go','Ha','Ir','Jo','Ka','Lu','Ma','Ne','Or','Pa'," \
    "'Ri','Sa','Te','Vu','Wi']"  # fmt: skip
_ENDINGS = "['n','ra','son','ley','to','mi','lo','dez','s','ck']"
_console = Console()


def run_export_bench(students: int, days: int, out_dir: Path) -> Path:
    """Generate ``students`` x ``days`` of aggregates, time baseline vs product, report."""
    if students < 1 or not 1 <= days <= MAX_DAYS:
        raise ValueError(f"need students >= 1 and 1 <= days <= {MAX_DAYS}")
    with tempfile.TemporaryDirectory(prefix="abacus-bench-export-") as tmp:
        home = Path(tmp)
        # Always embedded: the benchmark owns a throwaway store, never a configured server.
        settings = AbacusSettings(home=home, clickhouse=ClickHouseSettings())
        store = Store.open(settings)
        db = settings.clickhouse.database
        store.migrate()
        started = time.perf_counter()
        counts = generate(store, db, students, days)
        load_s = time.perf_counter() - started
        started = time.perf_counter()
        for table in counts:
            store.execute(f"OPTIMIZE TABLE {db}.{table} FINAL")
        optimize_s = time.perf_counter() - started
        started = time.perf_counter()
        # Every day of the data set closed (they are all in the past).
        store.rebuild_all_rollups({DISTRICT: _school_day(days - 1)})
        for table in ROLLUP_TABLES:
            store.execute(f"OPTIMIZE TABLE {db}.{table} FINAL")
        rollup_s = time.perf_counter() - started
        counts.update(
            {t: int(store.read(f"SELECT count() FROM {db}.{t}")[0][0]) for t in ROLLUP_TABLES}  # noqa: S608
        )
        load_rss = peak_rss_mb()
        facts = sum(n for t, n in counts.items() if not t.startswith("roster"))
        _console.print(
            f"generated {students:,} students x {days} school days: "
            + ", ".join(f"{t} {n:,}" for t, n in counts.items())
            + f" ({DAILY_ROWS_PER_DAY} daily + {LESSON_ROWS_PER_DAY} lesson fact rows per"
            f" student-day) in {load_s:.1f} s; OPTIMIZE FINAL {optimize_s:.1f} s;"
            f" rollups built from every fact in {rollup_s:.1f} s; peak RSS {load_rss:,.0f} MB"
        )
        results, equal = _measure(settings, store, home, days)
        store.close()  # chDB: one process on a data path at a time
        # The product again in a process of its own, as a worker exports: this process has
        # generated the data set (peaked at GBs) and ran the 20-35 s baseline in between.
        results["product, fresh process"] = _in_fresh_process(home, days)
        _console.print(
            "rollups vs facts (export query, CSVWithNames): "
            + ("identical, byte for byte" if equal else "DIFFERENT")
        )
        rows = _table(results)
        extra: dict[str, Any] = {
            "students": students,
            "days": days,
            "daily_rows_per_student_day": DAILY_ROWS_PER_DAY,
            "lesson_rows_per_student_day": LESSON_ROWS_PER_DAY,
            "table_rows": counts,
            "load_seconds": round(load_s, 2),
            "optimize_seconds": round(optimize_s, 2),
            "rollup_build_seconds": round(rollup_s, 2),
            "rollups_equal_facts": equal,
            "load_peak_rss_mb": round(load_rss, 1),
            "runs": results,
            "targets": _targets(results),
        }
        _console.print(
            "baseline = the export query over the facts with FORMAT CSVWithNames (the old"
            " baseline); floor = the finished rows from a plain table with CSVWithNames;"
            " product = ExportConsumer.run (the rollups, lines formatted by ClickHouse);"
            " product, fresh process = the same in a process that only opens the store and"
            f" exports (one warm-up, then {RUNS} runs: what a worker's export costs);"
            f" medians of {RUNS} alternating runs after one warm-up of each;"
            f" facts/day = daily+lesson fact rows per student-day ({facts:,} fact rows);"
            " peak RSS = the highest per-run peak"
        )
        for kind, runs in results.items():
            _console.print(f"{kind} runs: " + ", ".join(f"{r['seconds']:.2f} s" for r in runs))
        path = report("export", rows, out_dir, extra)
        for name, met in extra["targets"].items():
            _console.print(f"target {name}: {'met' if met else 'NOT met'}")
        if not equal:
            raise RuntimeError("the rollups' export differs from the facts' export")
        return path


# -- measurement ------------------------------------------------------------------------------


def _consumer(
    settings: AbacusSettings, store: Store, days: int
) -> tuple[ExportConsumer, ExportJob]:
    """The export consumer on the bench district and its district-wide job (all days)."""
    config = DistrictConfig(
        district_id=DISTRICT, name="Bench District", timezone="America/Chicago",
        school_year_start=YEAR_START.strftime("%m-%d"),
    )  # fmt: skip
    consumer = ExportConsumer(settings, store, {DISTRICT: config}, _no_status)
    request = {
        "request_id": "bench-export", "district_id": DISTRICT, "requester": ADMIN,
        "product": "both", "range": "custom",
        "start": YEAR_START.isoformat(), "end": _school_day(days - 1).isoformat(),
    }  # fmt: skip
    return consumer, asyncio.run(consumer.prepare(json.dumps(request).encode()))


def _in_fresh_process(home: Path, days: int) -> list[dict[str, float]]:
    """`_fresh_product` in a new interpreter (spawned: nothing of this one is inherited)."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(_fresh_product, str(home), days).result()


def _fresh_product(home: str, days: int) -> list[dict[str, float]]:
    """In a process of its own: open the store, one warm-up export, then timed ones."""
    settings = AbacusSettings(home=Path(home), clickhouse=ClickHouseSettings())
    store = Store.open(settings)
    try:
        consumer, job = _consumer(settings, store, days)
        asyncio.run(consumer.run(job))

        def product() -> tuple[int, int]:
            result = asyncio.run(consumer.run(job))
            return result.written.rows, result.written.bytes

        return [_timed(product) for _ in range(RUNS)]
    finally:
        store.close()


async def _no_status(doc: dict[str, Any]) -> None:
    """The benchmark publishes no status documents."""


def _measure(
    settings: AbacusSettings, store: Store, home: Path, days: int
) -> tuple[dict[str, list[dict[str, float]]], bool]:
    """Timed runs of each kind, and whether the rollups' export equals the facts'."""
    consumer, job = _consumer(settings, store, days)
    params = job.query.params()
    db = settings.clickhouse.database
    baseline_csv = home / "baseline.csv"

    def baseline() -> tuple[int, int]:
        body = store.read_format(export_sql(db, "facts"), params, "CSVWithNames")
        baseline_csv.write_bytes(body)
        return body.count(b"\n") - 1, len(body)

    def product() -> tuple[int, int]:
        result = asyncio.run(consumer.run(job))
        return result.written.rows, result.written.bytes

    # Warm-ups (page and mark caches, not counted), which also check exactness at scale
    # and give the floor its rows: the product's own file.
    equal = store.read_format(export_sql(db, "rollups"), params, "CSVWithNames") == (
        store.read_format(export_sql(db, "facts"), params, "CSVWithNames")
    )
    warm = asyncio.run(consumer.run(job))
    if json.loads(warm.manifest_path.read_text())["aggregates"] != "rollups":
        raise RuntimeError("the benchmark's export did not read the rollups")
    floor = _floor(store, db, warm.csv_path, home / "floor.csv")
    results: dict[str, list[dict[str, float]]] = {"baseline": [], "floor": [], "product": []}
    for _ in range(RUNS):
        results["baseline"].append(_timed(baseline))
        results["floor"].append(_timed(floor))
        results["product"].append(_timed(product))
    return results, equal


def _floor(store: Store, db: str, finished: Path, out: Path) -> Callable[[], tuple[int, int]]:
    """The floor run: the export's finished rows, loaded into a plain table of String
    columns named by its header, written by ClickHouse with CSVWithNames."""
    with finished.open(newline="", encoding="utf-8-sig") as f:
        header, *rows = csv.reader(f)
    columns = ", ".join(f"c{i} String" for i in range(len(header)))
    store.execute(
        f"CREATE TABLE IF NOT EXISTS {db}.{FLOOR_TABLE} ({columns})"
        " ENGINE = MergeTree ORDER BY tuple()"
    )
    store.execute(f"TRUNCATE TABLE {db}.{FLOOR_TABLE}")
    store.load_rows(f"{db}.{FLOOR_TABLE}", [f"c{i}" for i in range(len(header))], rows)
    names = ", ".join(f"c{i} AS `{h.replace('`', '')}`" for i, h in enumerate(header))
    sql = f"SELECT {names} FROM {db}.{FLOOR_TABLE}"  # noqa: S608 - our table and header

    def run() -> tuple[int, int]:
        data = store.read_format(sql, {}, "CSVWithNames")
        out.write_bytes(data)
        return data.count(b"\n") - 1, len(data)

    # The floor writes the same cells (quoted its own way).
    run()
    with out.open(newline="") as f:
        if sorted(list(csv.reader(f))[1:]) != sorted(rows):
            raise RuntimeError("the floor table does not hold the export's rows")
    return run


def _timed(run: Callable[[], tuple[int, int]]) -> dict[str, float]:
    _reset_peak_rss()
    started = time.perf_counter()
    rows, size = run()
    seconds = time.perf_counter() - started
    return {"rows": rows, "bytes": size, "seconds": seconds, "peak_rss_mb": peak_rss_mb()}


def _table(results: dict[str, list[dict[str, float]]]) -> list[dict[str, Any]]:
    medians = {k: statistics.median(r["seconds"] for r in runs) for k, runs in results.items()}
    rows = []
    for kind, runs in results.items():
        size = runs[-1]["bytes"]
        rows.append(
            {
                "run": kind,
                "rows": int(runs[-1]["rows"]),
                "facts/day": f"{DAILY_ROWS_PER_DAY}+{LESSON_ROWS_PER_DAY}",
                "MB": size / 1e6,
                "median s": medians[kind],
                "MB/s": size / 1e6 / medians[kind],
                "ratio": medians[kind] / medians["baseline"],
                "ratio to floor": medians[kind] / medians["floor"],
                "peak RSS MB": max(r["peak_rss_mb"] for r in runs),
            }
        )
    return rows


def _targets(results: dict[str, list[dict[str, float]]]) -> dict[str, bool]:
    product = statistics.median(r["seconds"] for r in results["product"])
    baseline = statistics.median(r["seconds"] for r in results["baseline"])
    fresh = results["product, fresh process"]
    return {
        "product <= 3 s": product <= 3.0,
        "product <= baseline (the facts query)": product <= baseline,
        "product, fresh process <= 3 s": statistics.median(r["seconds"] for r in fresh) <= 3.0,
        "product, fresh process: peak RSS <= 1 GiB": max(r["peak_rss_mb"] for r in fresh) <= 1024,
    }


def _reset_peak_rss() -> None:
    """Reset the kernel's RSS high-water mark so ru_maxrss is this phase's peak (Linux)."""
    # Elsewhere ru_maxrss stays the process-lifetime peak.
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak_rss_mb() -> float:
    """This process's peak RSS since the last `_reset_peak_rss`: VmHWM on Linux.
    ru_maxrss is no substitute there: it also keeps the peak of the memory a process had
    before it exec'd, so a spawned child reports its parent's RSS at the fork."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# -- data -------------------------------------------------------------------------------------


def _school_day(index: int) -> date:
    return FIRST_DAY + timedelta(days=7 * (index // 5) + index % 5)


def generate(
    store: Store, db: str, students: int, days: int, district: str = DISTRICT
) -> dict[str, int]:
    """Fill every table the export reads for ``district``; returns rows per table (all
    districts)."""
    teachers = max(1, students // 25)
    sid = "concat('S', leftPad(toString(s), 7, '0'))"
    school_day = f"toDate('{FIRST_DAY}') + 7 * intDiv(d, 5) + d % 5"
    # Grade index 0..13 (PK..12) is s % 14; PK-2 use prek2, some 2nd/3rd graders use both.
    product = "if((s % 14 < 4) != (s % 14 IN (3, 4) AND h % 10 = 0), 'prek2', 'g3plus')"

    def student_days(rows_per_day: int) -> str:
        """`rows_per_day` rows (k) per student (s) and school day (d), with a hash (h)."""
        return f"""(SELECT number, intDiv(number, {days * rows_per_day}) AS s,
                     intDiv(number, {rows_per_day}) % {days} AS d,
                     number % {rows_per_day} AS k, sipHash64(s, d) AS h,
                     {school_day} AS local_date, {product} = 'g3plus' AS g3, h % 101 AS score
              FROM numbers_mt({students * days * rows_per_day}))"""  # noqa: S608 - ints

    daily_rows, lesson_rows = student_days(DAILY_ROWS_PER_DAY), student_days(LESSON_ROWS_PER_DAY)
    student_cols = (
        "district_id, student_id, first_name, last_name, grade, building, is_ell, is_iep, "
        "district_data_1, district_data_2, district_data_3, district_data_4, district_data_5, "
        "is_active, import_id, version, updated_at"
    )
    statements = [
        f"""INSERT INTO {db}.roster_students ({student_cols})
        SELECT '{district}', {sid},
               concat({_SYLLABLES}[1 + sipHash64(s, 'f') % 20], {_ENDINGS}[1 + s % 10]),
               concat({_SYLLABLES}[1 + sipHash64(s, 'l') % 20],
                      lower({_SYLLABLES}[1 + sipHash64(s, 'm') % 20]),
                      {_ENDINGS}[1 + sipHash64(s, 'e') % 10], if(s % 100 = 7, ', Jr.', '')),
               {GRADES_SQL}[1 + s % 14], if(s % 14 < 7, 'Oak Elementary', 'Cedar Middle School'),
               s % 9 = 0, s % 11 = 0, concat('user', toString(s)), toString(100000000 + s),
               '', '', '', s % 50 != 49, 'bench', 1, now64(3)
        FROM (SELECT number AS s FROM numbers({students}))""",  # noqa: S608
        f"INSERT INTO {db}.roster_students_history SELECT * FROM {db}.roster_students "  # noqa: S608
        f"WHERE district_id = '{district}'",
        f"""INSERT INTO {db}.roster_users
            (district_id, employee_id, username, email, first_name, last_name, user_type,
             buildings, is_active, import_id, version, updated_at)
        SELECT '{district}', if(t = {teachers}, '{ADMIN}', concat('T', toString(t))),
               concat('staff', toString(t)), concat('staff', toString(t), '@bench.example'),
               {_SYLLABLES}[1 + sipHash64(t, 'f') % 20],
               concat({_SYLLABLES}[1 + sipHash64(t, 'l') % 20], {_ENDINGS}[1 + t % 10]),
               if(t = {teachers}, 3, 1),
               if(t = {teachers}, [], [if(t % 2 = 0, 'Oak Elementary', 'Cedar Middle School')]),
               1, 'bench', 1, now64(3)
        FROM (SELECT number AS t FROM numbers({teachers + 1}))""",  # noqa: S608
        f"""INSERT INTO {db}.roster_links
            (district_id, employee_id, student_id, is_active, import_id, version, updated_at)
        SELECT '{district}', concat('T', toString(t)), {sid}, 1, 'bench', 1, now64(3)
        FROM (SELECT number AS s, arrayJoin(if(s % 2 = 0 AND {teachers} > 1,
                  [s % {teachers}, (s + 1) % {teachers}], [s % {teachers}])) AS t
              FROM numbers({students}))""",  # noqa: S608
        f"""INSERT INTO {db}.daily_facts
        SELECT '{district}', {sid}, local_date, generateUUIDv4(number), 0, {product},
               toDateTime64(toDateTime(local_date, 'UTC') + 50400 + k * 600 + h % 600, 3, 'UTC'),
               if(k = 0, 300000 + h % 2400000, 0),
               if(k = 0 AND h % 4 = 0, 60000 + h % 3600000, 0),
               k = 1, if(k = 2 AND g3, score, 0), k = 2 AND g3,
               if(k = 2 AND g3 AND score < 80, 40 + h % 61, 0), k = 2 AND g3 AND score < 80,
               if(k = 1, h % 15, 0), if(k = 2 AND g3, 10 + h % 90, 0),
               if(k = 2 AND NOT g3, h % 6, 0), k = 1 AND h % 7 = 0, k = 1 AND h % 31 = 0
        FROM {daily_rows}
        SETTINGS max_insert_threads = 2""",  # noqa: S608
        # One lesson per student-day: a start and an outcome (pre quiz >= 80, else a post
        # quiz >= 70, for Grade 3+; a completion with every token for PreK-2).
        f"""INSERT INTO {db}.lesson_facts
        SELECT '{district}', {sid}, concat('L', toString(d + 1)),
               toDateTime64(toDateTime(local_date, 'UTC') + 51000 + k * 600, 3, 'UTC'),
               generateUUIDv4(number), local_date,
               if(k = 0, 'start', if(NOT g3, 'complete', if(score >= 80, 'pre', 'post'))),
               k = 1 AND if(g3, score >= 80 OR h % 3 != 0, h % 4 != 0),
               {GRADES_SQL}[1 + greatest(0, s % 14 - (h % 4 = 0))], {product}
        FROM {lesson_rows}
        SETTINGS max_insert_threads = 2""",  # noqa: S608
        # 1-3 benchmarks per student: early autumn, mid-year, late spring (K percentiles).
        f"""INSERT INTO {db}.benchmark_facts
        SELECT '{district}', {sid}, generateUUIDv4(s * 3 + b),
               toDateTime64(toDateTime(local_date, 'UTC') + 54000, 3, 'UTC'), local_date, b,
               toInt32(h % 1400) - 200, {GRADES_SQL}[1 + s % 14],
               if(h % 10 = 0, NULL, toUInt8(1 + h % 99))
        FROM (SELECT number AS s, arrayJoin(range(1, 2 + sipHash64(s) % 3)) AS b,
                     sipHash64(s, b) AS h,
                     [least(5, {days - 1}), intDiv({days}, 2), greatest(0, {days - 10})][b] AS d,
                     {school_day} AS local_date
              FROM numbers({students}))""",  # noqa: S608
    ]
    for statement in statements:
        store.execute(statement)
    tables = (
        "roster_students", "roster_students_history", "roster_users", "roster_links",
        "daily_facts", "lesson_facts", "benchmark_facts",
    )  # fmt: skip
    return {t: int(store.read(f"SELECT count() FROM {db}.{t}")[0][0]) for t in tables}  # noqa: S608
