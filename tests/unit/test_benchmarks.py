"""Unit tests for NCE, Quantile formatting, performance levels and the PK/K display rules."""

from datetime import date

import pytest

from abacus.domain.benchmarks import (
    DEFAULT_CUT_SCORES,
    BenchmarkCells,
    CutScores,
    benchmark_display,
    format_quantile,
    nce_from_percentile,
    percentile_shown,
    performance_level,
)

ALL_GRADES = ("K", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12")


# Expected values by hand: 50 + 21.06 * z, with z from a normal table.
@pytest.mark.parametrize(
    ("p", "nce"),
    [
        (50, 50),  # z = 0
        (1, 1),  # z = -2.3263 -> 1.006
        (99, 99),  # z = 2.3263 -> 98.99
        (90, 77),  # z = 1.2816 -> 76.99
        (10, 23),  # z = -1.2816 -> 23.01
        (25, 36),  # z = -0.6745 -> 35.80
        (75, 64),  # z = 0.6745 -> 64.20
        (60, 55),  # z = 0.2533 -> 55.34
        (2, 7),  # z = -2.0537 -> 6.75
        (98, 93),  # z = 2.0537 -> 93.25
        (0, 1),  # clipped (z = -inf)
        (100, 99),  # clipped (z = +inf)
    ],
)
def test_nce_known_values(p: int, nce: int) -> None:
    assert nce_from_percentile(p) == nce


@pytest.mark.parametrize("p", [-1, 101])
def test_nce_rejects_out_of_range(p: int) -> None:
    for _ in range(2):  # cached, but a refused percentile is refused every time
        with pytest.raises(ValueError, match="percentile"):
            nce_from_percentile(p)


@pytest.mark.parametrize(
    ("q", "text"), [(-150, "EM150Q"), (-5, "EM5Q"), (0, "0Q"), (420, "420Q"), (1600, "1600Q")]
)
def test_format_quantile(q: int, text: str) -> None:
    assert format_quantile(q) == text


@pytest.mark.parametrize(
    ("q", "grade", "level"),
    [
        (-500, "3", "Below Basic"),
        (424, "3", "Below Basic"),
        (425, "3", "Basic"),
        (574, "3", "Basic"),
        (575, "3", "Proficient"),
        (725, "3", "Advanced"),
        (150, "KG", "Proficient"),
        (-10, "K", "Below Basic"),
        (1300, "12", "Advanced"),
        (1299, "12", "Proficient"),
        (625, "05", "Basic"),
    ],
)
def test_default_performance_levels(q: int, grade: str, level: str) -> None:
    assert performance_level(q, grade, DEFAULT_CUT_SCORES) == level


def test_prek_has_no_performance_level() -> None:
    assert performance_level(300, "PK", DEFAULT_CUT_SCORES) is None


def test_default_thresholds_rise_with_grade() -> None:
    proficient = [dict((lbl, q) for q, lbl in DEFAULT_CUT_SCORES.by_grade[g])["Proficient"]
                  for g in ALL_GRADES]  # fmt: skip
    assert proficient == sorted(proficient)
    assert len(set(proficient)) == len(proficient)


def test_custom_cut_scores_from_mapping() -> None:
    raw = {g: [[-400, "Red"], [500, "Green"]] for g in ALL_GRADES}
    cuts = CutScores.from_mapping(raw)
    assert performance_level(499, "7", cuts) == "Red"
    assert performance_level(500, "7", cuts) == "Green"


def test_cut_scores_validation() -> None:
    full = {g: ((0, "A"), (10, "B")) for g in ALL_GRADES}
    missing = {g: v for g, v in full.items() if g != "12"}
    assert performance_level(20, "12", CutScores(missing)) is None
    assert performance_level(20, "11", CutScores(missing)) == "B"
    with pytest.raises(ValueError, match="strictly increase"):
        CutScores({**full, "4": ((10, "A"), (10, "B"))})
    with pytest.raises(ValueError, match="K-12"):
        CutScores({**full, "PK": ((0, "A"),)})
    with pytest.raises(ValueError, match="K-12"):
        CutScores({**full, "5": ()})


def test_cut_scores_are_read_only() -> None:
    with pytest.raises(TypeError):
        DEFAULT_CUT_SCORES.by_grade["K"] = ()  # type: ignore[index]


def test_prek_gets_nothing() -> None:
    cells = benchmark_display("PK", date(2026, 5, 1), 60, 100, DEFAULT_CUT_SCORES)
    assert cells == BenchmarkCells(None, None, None)


@pytest.mark.parametrize(
    ("test_date", "shown"),
    [
        (date(2026, 3, 31), False),
        (date(2026, 4, 1), True),
        (date(2026, 5, 15), True),
        (date(2026, 7, 31), True),
        (date(2026, 8, 1), False),
        (date(2025, 10, 1), False),
    ],
)
def test_kindergarten_percentile_only_april_to_july(test_date: date, shown: bool) -> None:
    cells = benchmark_display("K", test_date, 60, 150, DEFAULT_CUT_SCORES)
    expected = (60, 55) if shown else (None, None)
    assert cells == BenchmarkCells("Proficient", *expected)
    assert percentile_shown("KG", test_date) is shown
    assert percentile_shown("PK", test_date) is False
    assert percentile_shown("01", test_date) is True


def test_other_grades_show_percentile_when_present() -> None:
    assert benchmark_display("3", date(2025, 10, 1), 90, 600, DEFAULT_CUT_SCORES) == (
        BenchmarkCells("Proficient", 90, 77)
    )
    assert benchmark_display("3", date(2025, 10, 1), None, 600) == BenchmarkCells(
        "Proficient", None, None
    )
