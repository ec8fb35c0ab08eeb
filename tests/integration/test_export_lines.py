"""ClickHouse formats the export's lines exactly as the Python reference does.

`abacus.export.lines` runs in a real engine (chDB, in a subprocess: tests/support/
sql_lines.py) on thousands of generated rows, edge values included (formula starts, quotes,
line breaks, NUL, casefolded teacher names, .5 averages, every benchmark rule), and its
lines are compared byte for byte with `RowFormatter` + `write_rows` (`csv_lines`). The rows
`RowFormatter` refuses fail the query too.
"""

from __future__ import annotations

import math
import pickle
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from abacus.export.lines import TEACHERS_CHANGED
from abacus.export.query import EXPORT_COLUMNS
from abacus.export.rows import RowFormatter, csv_lines
from tests.unit.test_export_rows_exact import CONFIGS, generated_rows

COL = {name: i for i, name in enumerate(EXPORT_COLUMNS)}
# Names whose case-insensitive order needs casefold (``ß`` is ``ss``), not lowercasing.
CASEFOLDED = [("Ann", "Straße"), ("Bo", "STRASSE"), ("Cy", "strasse"), ("Di", "Strasse")]


def as_queried(row: Sequence[Any]) -> tuple[Any, ...]:
    """A generated row as the export query types it (no NULL counts, dates as dates)."""
    r = list(row)
    for name in ("passed", "passed_by_pre", "passed_on_grade"):
        r[COL[name]] = int(r[COL[name]] or 0)
    r[COL["is_iep"]] = int(r[COL["is_iep"]])
    r[COL["benchmarks"]] = [
        (int(n), q, lvl, pct, on if isinstance(on, date) else date.fromisoformat(on), at)
        for n, q, lvl, pct, on, at in r[COL["benchmarks"]] or []
    ]
    r[COL["teachers"]] = list(r[COL["teachers"]] or [])
    return tuple(r)


def in_export_order(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return sorted(rows, key=lambda r: (r[COL["last_name"]], r[COL["first_name"]], r[0]))


def teachers_of(rows: list[tuple[Any, ...]]) -> list[tuple[str, str]]:
    return [name for row in rows for name in row[COL["teachers"]]]


def with_values(row: tuple[Any, ...], **values: Any) -> tuple[Any, ...]:
    r = list(row)
    for name, value in values.items():
        r[COL[name]] = value
    return tuple(r)


def formatted_in_clickhouse(tmp_path: Path, cases: list[Any]) -> list[Any]:
    source, target = tmp_path / "cases.pickle", tmp_path / "lines.pickle"
    source.write_bytes(pickle.dumps(cases))
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.sql_lines", str(source), str(target)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return pickle.loads(target.read_bytes())


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every case, formatted in one engine process (its start is most of the cost)."""
    cases: dict[str, Any] = {}
    for name, config in CONFIGS.items():
        rows = [as_queried(row) for row in generated_rows(4000, seed=len(name) + 40)]
        rows[0] = with_values(rows[0], teachers=[*CASEFOLDED, CASEFOLDED[0]])
        cases[name] = (config, rows, teachers_of(rows))
    config = CONFIGS["defaults"]
    row = as_queried(generated_rows(1, seed=3)[0])
    taken = (1, 420, "3", 101, date(2025, 10, 1), datetime(2025, 10, 1, tzinfo=UTC))
    refused = {
        "percentile": with_values(row, grade="5", benchmarks=[taken]),
        "grade": with_values(row, grade="13", benchmarks=[(*taken[:3], 50, *taken[4:])]),
        "average": with_values(row, pre_sum=math.inf, pre_count=2),
        "environment": with_values(row, environment="g9"),
    }
    for name, bad in refused.items():
        cases[f"refused {name}"] = (config, [bad], teachers_of([bad]))
    lone = with_values(row, teachers=[])  # a district whose roster names no teacher
    cases["no teachers"] = (config, [lone], [])
    unknown = with_values(row, teachers=[("New", "Teacher")])
    cases["teacher unknown"] = (config, [unknown], [("Other", "Teacher")])
    out = formatted_in_clickhouse(tmp_path_factory.mktemp("lines"), list(cases.values()))
    return {name: (case, got) for (name, case), got in zip(cases.items(), out, strict=True)}


@pytest.mark.parametrize("config", CONFIGS)
def test_lines_equal_the_python_reference_byte_for_byte(
    results: dict[str, Any], config: str
) -> None:
    (district, rows, _), lines = results[config]
    assert isinstance(lines, list), lines
    want = list(csv_lines(in_export_order(rows), district))
    assert len(lines) == len(want) == 4000
    for n, (got, expected) in enumerate(zip(lines, want, strict=True)):
        assert got == expected, f"line {n}: {in_export_order(rows)[n]!r}"
    written = "".join(lines)
    assert "Ann Straße;Bo STRASSE;Cy strasse;Di Strasse" in written  # casefold order
    assert "'=1+2" in written
    assert '"a,b"' in written
    assert '"Qu""ote"' in written


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("refused percentile", "percentile must be in 0..100"),
        ("refused grade", "not a grade level"),
        ("refused average", "a quiz average is not a percent"),
        ("refused environment", "unknown learning environment"),
        ("teacher unknown", TEACHERS_CHANGED),
    ],
)
def test_rows_the_reference_refuses_fail_the_query(
    results: dict[str, Any], case: str, reason: str
) -> None:
    (district, rows, _), got = results[case]
    assert isinstance(got, str), got
    assert reason in got
    if case != "teacher unknown":  # the reference refuses the same rows
        with pytest.raises((ValueError, KeyError, OverflowError)):
            RowFormatter(district).cells(rows[0])


def test_a_district_without_teachers_formats_its_rows(results: dict[str, Any]) -> None:
    (district, rows, _), lines = results["no teachers"]
    assert lines == list(csv_lines(rows, district))
