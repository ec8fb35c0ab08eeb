"""Benchmark: formatting and writing export rows in Python (no ClickHouse, no broker).

    .venv/bin/python benchmarks/export_rows.py [--rows 20000] [--repeat 5]

Generates export-query rows as ClickHouse returns them (columns `EXPORT_COLUMNS`): grades
PK-8, both environments, 0-3 benchmark results in the year's three windows (some without a
percentile), classes of 25 with 1-3 teachers, nonzero times, and the empty aggregates of
students the LEFT JOINs found nothing for.
Times, on the same rows, the export's own path, `RowFormatter.cells` then `write_rows` into
an in-memory file, against the floor in the same run: `csv.writer.writerow` of the same
rows' cells, formatted beforehand. Prints µs per row for both, the ratio, and what 100,000
students cost at that rate. The best of ``--repeat`` runs is taken, the two sides taking
turns (the machine may be shared; the load average is printed).
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import random
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from abacus.district import DistrictConfig
from abacus.domain.csvcells import EXPORT_HEADER, write_rows
from abacus.export.query import EXPORT_COLUMNS
from abacus.export.rows import RowFormatter

CONFIG = DistrictConfig(name="Bench", timezone="America/Chicago", school_year_start="08-15")
GRADES = ["PK", "K", *(str(g) for g in range(1, 9))]
FIRST = ["Ana", "Ben", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jun"]
LAST = ["Garcia", "Nguyen", "Smith", "O'Neil", "Lee", "Patel", "Kim", "Brown", "Diaz", "Wu"]
# The three benchmark windows (fall, winter, spring): four weeks each.
WINDOWS = {1: date(2025, 9, 8), 2: date(2026, 1, 5), 3: date(2026, 4, 13)}


def make_rows(n: int, seed: int = 11) -> list[tuple[Any, ...]]:
    """``n`` export-query rows; a tenth are students with no usage (LEFT JOIN defaults)."""
    rng = random.Random(seed)  # noqa: S311 - test data, not crypto
    staff = [(f"T{rng.choice(FIRST)}", f"{rng.choice(LAST)}{t}") for t in range(n // 25 + 3)]
    rows = []
    for s in range(n):
        grade = rng.choice(GRADES)
        idle = rng.random() < 0.1
        results = []
        for number in sorted(rng.sample((1, 2, 3), rng.randint(0, 3))):
            taken = WINDOWS[number] + timedelta(days=rng.randint(0, 27))
            percentile = None if rng.random() < 0.15 else rng.randint(0, 100)
            at = datetime.combine(taken, datetime.min.time(), UTC) + timedelta(
                minutes=rng.randint(7 * 60, 16 * 60)
            )
            results.append(
                (number, rng.randint(-400, 1400), rng.choice(GRADES[1:]), percentile, taken, at)
            )
        values = {
            "student_id": f"S{s:07d}",
            "first_name": rng.choice(FIRST),
            "last_name": rng.choice(LAST),
            "grade": grade,
            "building": f"School {s % 20:02d}",
            "is_ell": rng.randint(0, 1),
            "is_iep": rng.randint(0, 1),
            "is_active": int(rng.random() < 0.95),
            "district_data": [f"user{s}", f"ALT{s}", "", "", ""],
            "environment": "prek2" if grade in ("PK", "K", "1", "2") else "g3plus",
            "ever_g3": 0 if idle else rng.randint(0, 1),
            "ever_prek2": 0 if idle else rng.randint(0, 1),
            # A class of 25 with its teacher; some classes have one or two co-teachers.
            "teachers": staff[s // 25 : s // 25 + 1 + (s // 25) % 3],
            "benchmarks": results,
        }
        if idle:  # join_use_nulls = 0: numbers are 0, arrays empty; pass counts may be None
            counts = dict.fromkeys(("passed", "passed_by_pre", "passed_on_grade"), None)
            usage = {name: 0 for name in EXPORT_COLUMNS[12:24]} | {"pre_sum": 0.0, "post_sum": 0.0}
        else:
            pre_count, post_count = rng.randint(0, 30), rng.randint(0, 30)
            passed = rng.randint(0, 40)
            on_grade = rng.randint(0, passed)
            counts = {
                "passed": passed,
                "passed_by_pre": rng.randint(0, passed),
                "passed_on_grade": on_grade,
            }
            usage = {
                "school_ms": rng.randint(1, 40 * 3_600_000),
                "evening_ms": rng.randint(1, 10 * 3_600_000),
                "lessons_started": passed + rng.randint(0, 10),
                "pre_sum": float(sum(rng.randint(0, 100) for _ in range(pre_count))),
                "pre_count": pre_count,
                "post_sum": float(sum(rng.randint(0, 100) for _ in range(post_count))),
                "post_count": post_count,
                "problems": rng.randint(1, 3000),
                "points": rng.randint(0, 50_000),
                "tokens": rng.randint(0, 500),
                "math_helps": rng.randint(0, 50),
                "live_helps": rng.randint(0, 10),
            }
        values |= usage | counts
        rows.append(tuple(values[name] for name in EXPORT_COLUMNS))
    return rows


def best_of(repeat: int, *runs: Callable[[], object]) -> list[float]:
    """Fastest of ``repeat`` runs of each, in seconds; the runs take turns, so a burst of
    load on the shared machine hits both sides alike."""
    best = [float("inf")] * len(runs)
    for _ in range(repeat):
        for i, run in enumerate(runs):
            started = time.perf_counter()
            run()
            best[i] = min(best[i], time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rows = make_rows(args.rows)
    load_start = os.getloadavg()[0]

    def export_path() -> None:
        formatter = RowFormatter(CONFIG)  # once per export, as consumers/export.py does
        write_rows((formatter.cells(row) for row in rows), io.StringIO(), header=EXPORT_HEADER)

    formatter = RowFormatter(CONFIG)
    formatted = [formatter.cells(row) for row in rows]

    def floor() -> None:
        writer = csv.writer(io.StringIO(), lineterminator="\r\n")
        writer.writerow(EXPORT_HEADER)
        for cells in formatted:
            writer.writerow(cells)

    exported, floored = best_of(args.repeat, export_path, floor)
    per_row, floor_row = exported / len(rows) * 1e6, floored / len(rows) * 1e6
    print(f"{len(rows):,} rows, best of {args.repeat} runs")
    print(f"  cells() + write_rows:            {per_row:6.2f} µs/row")
    print(f"  csv.writer of formatted (floor): {floor_row:6.2f} µs/row")
    print(f"  ratio: {per_row / floor_row:.1f}x the floor")
    print(f"  100,000 students: {per_row / 10:.2f} s (floor {floor_row / 10:.2f} s)")
    print(f"  load average (1 min) at start / end: {load_start:.1f} / {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
