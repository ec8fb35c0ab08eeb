"""The export's fast row path gives the very cells and CSV bytes of the plain one.

`RowFormatter` unpacks rows and caches shared cells, `write_rows` skips neutralising rows
that need none, and `fmt_average` rounds in integers: each is compared here, over thousands
of generated rows (edge values included), with the straightforward code it replaced, kept
below as the reference.
"""

from __future__ import annotations

import csv
import io
import math
import random
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from statistics import NormalDist
from typing import Any

import pytest

from abacus.district import DISTRICT_DATA_COLUMNS, DistrictConfig
from abacus.domain.benchmarks import CutScores, format_quantile, performance_level
from abacus.domain.csvcells import (
    EXPORT_HEADER,
    fmt_average,
    fmt_bool,
    fmt_date,
    fmt_teachers,
    neutralize,
    write_rows,
)
from abacus.domain.grades import normalize_grade
from abacus.domain.timesplit import format_hhmm
from abacus.export.query import EXPORT_COLUMNS
from abacus.export.rows import ENVIRONMENT_LABELS, RowFormatter

CONFIGS = {
    "defaults": DistrictConfig(name="M", timezone="America/Chicago", school_year_start="08-15"),
    # Its own table (grades 4-12 have no levels) and other District_Data columns.
    "own": DistrictConfig(
        name="N",
        timezone="America/New_York",
        school_year_start="07-01",
        cut_scores={"K": [(-100, "Low"), (200, "High")], "1": [(0, "One")], "3": [(500, "T")]},
        username_column="District_Data_3",
        alt_student_number_column="District_Data_5",
    ),
}
GRADES = ["PK", "K", "KG", "k", "1", "01", "2", "3", "04", "5", "6", "7", "8", "12"]
# Spreadsheet formula starts, CSV quoting, NUL, non-ASCII: names come from rosters.
NAMES = ["Ana", "=1+2", "-Lee", "+x", "@a", "\tTab", "\rCR", "O'Neil", 'Qu"ote', "a,b", "\x00=z"]
NAMES += ["Zoë", "line\nbreak", "-5", "", " Pad ", "Émile", "lee", "LEE"]


def reference_nce(p: int) -> int:
    if not 0 <= p <= 100:
        raise ValueError(f"percentile must be in 0..100: {p}")
    if p in (0, 100):
        return 1 if p == 0 else 99
    return min(99, max(1, math.floor(50 + 21.06 * NormalDist().inv_cdf(p / 100) + 0.5)))


def reference_display(
    grade: str, test_date: date, percentile: int | None, quantile: int, cuts: CutScores
) -> tuple[str | None, int | None, int | None]:
    g = normalize_grade(grade)
    if g == "PK":
        return None, None, None
    level = performance_level(quantile, grade, cuts)
    if percentile is None or (g == "K" and test_date.month not in (4, 5, 6, 7)):
        return level, None, None
    return level, percentile, reference_nce(percentile)


def reference_average(total: float, count: int) -> str:
    if count == 0:
        return ""
    return str(math.floor(Fraction(total) / count + Fraction(1, 2)))


def reference_cells(config: DistrictConfig, row: Sequence[Any]) -> list[str]:
    """The formatter as it was: a dict per row, every cell computed on the spot."""
    r = {name: row[i] for i, name in enumerate(EXPORT_COLUMNS)}
    cuts = config.cut_score_table()
    username_at = DISTRICT_DATA_COLUMNS.index(config.username_column)
    alt_at = DISTRICT_DATA_COLUMNS.index(config.alt_student_number_column)
    g3 = bool(r["ever_g3"]) or r["environment"] == "g3plus"
    prek2 = bool(r["ever_prek2"]) or r["environment"] == "prek2"
    passed, on_grade = int(r["passed"] or 0), int(r["passed_on_grade"] or 0)
    by_number = {int(res[0]): res for res in r["benchmarks"] or []}
    tests: list[str] = []
    latest: tuple[Any, str] | None = None
    for number in (1, 2, 3):
        res = by_number.get(number)
        if res is None:
            tests += [""] * (5 if number == 2 else 6)
            continue
        _, quantile, level, percentile, taken_on, taken_at = res
        test_date = taken_on if isinstance(taken_on, date) else date.fromisoformat(taken_on)
        perf, rank, nce = reference_display(r["grade"], test_date, percentile, int(quantile), cuts)
        block = [perf or ""] + ([level] if number != 2 else [])
        block += [format_quantile(int(quantile)), fmt_date(test_date)]
        block += ["" if rank is None else str(rank), "" if nce is None else str(nce)]
        tests += block
        if latest is None or taken_at > latest[0]:
            latest = (taken_at, perf or "")
    tests.append(latest[1] if latest else "")

    def g3_only(cell: str) -> str:
        return cell if g3 else ""

    return [
        r["first_name"], r["last_name"], r["district_data"][username_at], r["student_id"],
        r["district_data"][alt_at], r["grade"], fmt_bool(bool(r["is_active"])),
        fmt_bool(bool(r["is_ell"])), fmt_bool(bool(r["is_iep"])),
        ENVIRONMENT_LABELS[r["environment"]], r["building"], fmt_teachers(r["teachers"] or []),
        *tests,
        str(int(r["lessons_started"])), str(passed), str(on_grade), str(passed - on_grade),
        g3_only(str(int(r["passed_by_pre"] or 0))),
        g3_only(reference_average(r["pre_sum"], int(r["pre_count"]))),
        g3_only(reference_average(r["post_sum"], int(r["post_count"]))),
        str(int(r["problems"])), g3_only(str(int(r["points"]))),
        str(int(r["tokens"])) if prek2 else "", g3_only(str(int(r["math_helps"]))),
        g3_only(str(int(r["live_helps"]))),
        format_hhmm(int(r["school_ms"]) + int(r["evening_ms"])),
        format_hhmm(int(r["school_ms"])), format_hhmm(int(r["evening_ms"])),
    ]  # fmt: skip


def reference_csv(rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    for row in [list(EXPORT_HEADER), *rows]:
        writer.writerow([neutralize(cell) for cell in row])
    return out.getvalue()


def result(rng: random.Random, number: int) -> tuple[Any, ...]:
    """One benchmark result as the query returns it; a few dates repeat across students."""
    taken = date(2025, 8, 20) + timedelta(
        days=rng.choice([0, 40, 120, 230, 250, rng.randint(0, 330)])
    )
    at = datetime.combine(taken, datetime.min.time(), UTC) + timedelta(
        seconds=rng.randint(0, 90_000)
    )
    return (
        rng.choice([number, str(number)]),
        rng.choice([-400, -1, 0, 5, 150, 149, 300, 575, 1000, 1300, rng.randint(-400, 1600)]),
        rng.choice(["K", "1", "5", "", "=HYPERLINK(1)"]),
        rng.choice([None, 0, 1, 49, 50, 51, 99, 100, rng.randint(0, 100)]),
        taken if rng.random() < 0.8 else taken.isoformat(),
        rng.choice([at, at, datetime(2025, 9, 1, tzinfo=UTC)]),  # ties keep the first
    )


def generated_rows(n: int, seed: int) -> list[tuple[Any, ...]]:
    rng = random.Random(seed)
    staff = [(rng.choice(NAMES), rng.choice(NAMES)) for _ in range(12)]
    rows = []
    for s in range(n):
        counts = [rng.randint(0, 9) for _ in range(2)]
        # Sums that are whole, or .5 and other ties once averaged (exact rounding matters).
        sums = [rng.choice([0.0, 80.5 * c, 100.0 * c, c * rng.randint(0, 200) / 2]) for c in counts]
        passed = rng.choice([None, 0, rng.randint(0, 40)])
        tests = sorted(rng.sample((1, 2, 3), rng.randint(1, 3)))
        values = {
            "student_id": f"S{s}",
            "first_name": rng.choice(NAMES),
            "last_name": rng.choice(NAMES),
            "grade": rng.choice(GRADES),
            "building": rng.choice(["Oak", "=Elm", "Pine, East"]),
            "is_ell": rng.randint(0, 1),
            "is_iep": rng.choice([0, 1, True]),
            "is_active": rng.randint(0, 1),
            "district_data": [rng.choice(NAMES) + str(k) for k in range(5)],
            "environment": rng.choice(["prek2", "g3plus"]),
            "ever_g3": rng.randint(0, 1),
            "ever_prek2": rng.randint(0, 1),
            "school_ms": rng.choice([0, 59_999, 60_000, rng.randint(0, 400 * 3_600_000)]),
            "evening_ms": rng.choice([0, rng.randint(0, 50 * 3_600_000)]),
            "lessons_started": rng.randint(0, 50),
            "pre_sum": sums[0],
            "pre_count": counts[0],
            "post_sum": sums[1],
            "post_count": counts[1],
            "problems": rng.randint(0, 5000),
            "points": rng.randint(0, 99_999),
            "tokens": rng.randint(0, 999),
            "math_helps": rng.randint(0, 60),
            "live_helps": rng.randint(0, 9),
            "passed": passed,
            "passed_by_pre": rng.choice([None, rng.randint(0, passed or 0)]),
            "passed_on_grade": None if passed is None else rng.randint(0, passed),
            "benchmarks": rng.choice([None, [], [result(rng, k) for k in tests]]),
            "teachers": rng.choice([None, [], *([rng.sample(staff, rng.randint(1, 3))] * 3)]),
        }
        if rng.random() < 0.05:  # the same teacher twice (two links) and the LEFT JOIN zeros
            values["teachers"] = [staff[0], staff[0], staff[1]]
        rows.append(tuple(values[name] for name in EXPORT_COLUMNS))
    return rows


@pytest.mark.parametrize("config", CONFIGS, ids=list(CONFIGS))
def test_cells_and_csv_bytes_match_the_plain_formatter(config: str) -> None:
    district = CONFIGS[config]
    rows = generated_rows(4000, seed=len(config))
    formatter = RowFormatter(district)  # one per export: its caches fill as rows go by
    fast = [formatter.cells(row) for row in rows]
    plain = [reference_cells(district, row) for row in rows]
    for n, (got, want) in enumerate(zip(fast, plain, strict=True)):
        assert got == want, f"row {n}: {rows[n]!r}"
        assert all(type(cell) is str for cell in got), f"row {n}"
    out = io.StringIO()
    assert write_rows(fast, out, header=EXPORT_HEADER) == len(rows)
    written = out.getvalue()
    assert written == reference_csv(plain)
    assert "\r\n'=1+2," in written or ",'=1+2," in written  # some cells were neutralised


def test_rows_the_reference_formats_are_varied() -> None:
    """The generated rows reach the paths that differ (a test of the generator)."""
    district = CONFIGS["defaults"]
    cells = [reference_cells(district, row) for row in generated_rows(4000, seed=8)]
    column = {name: {row[i] for row in cells} for i, name in enumerate(EXPORT_HEADER)}
    assert {"", "Below Basic", "Basic", "Proficient", "Advanced"} <= column[
        "benchmark_1_performance_level"
    ]
    assert {"", "1", "99"} <= column["benchmark_3_nce"]
    assert {"", "0", "100"} <= column["benchmark_2_percentile_rank"]
    assert "" in column["pre_quiz_average"]
    assert "81" in column["pre_quiz_average"]
    assert "" in column["teachers"]
    assert any(";" in t for t in column["teachers"])
    assert any(d.startswith("2026-") for d in column["benchmark_1_date"])


@pytest.mark.parametrize(
    ("total", "count"),
    [(161.0, 2), (80.5, 1), (241.5, 3), (0.1 + 0.2, 1), (1e300, 7), (7, 2), (Fraction(5, 3), 1)],
)
def test_fmt_average_rounds_as_the_exact_fraction(total: float, count: int) -> None:
    assert fmt_average(total, count) == reference_average(total, count)


def test_fmt_average_refuses_what_fraction_refuses() -> None:
    for bad in (math.nan, math.inf):
        with pytest.raises((ValueError, OverflowError)):
            fmt_average(bad, 2)
    with pytest.raises(ValueError, match="must not be negative"):
        fmt_average(1.0, -1)
