"""Benchmark cells: NCE from percentile, Quantile formatting, performance levels, PK/K rules.

``DEFAULT_CUT_SCORES`` is an ILLUSTRATIVE default, not the vendor's or MetaMetrics' table:
four levels ("Below Basic", "Basic", "Proficient", "Advanced") whose minimum Quantile
measures rise with grade (K: Basic 0Q / Proficient 150Q / Advanced 300Q ... grade 12:
1000Q / 1150Q / 1300Q). Districts supply their own table in config.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
from itertools import pairwise
from statistics import NormalDist
from types import MappingProxyType

from abacus.domain.grades import GRADES, normalize_grade

__all__ = [
    "CUT_SCORE_GRADES",
    "DEFAULT_CUT_SCORES",
    "KINDERGARTEN_PERCENTILE_MONTHS",
    "BenchmarkCells",
    "CutScores",
    "benchmark_display",
    "format_quantile",
    "nce_from_percentile",
    "percentile_shown",
    "performance_level",
]

CUT_SCORE_GRADES: tuple[str, ...] = GRADES[1:]  # K-12: PreK is not on the scale
KINDERGARTEN_PERCENTILE_MONTHS = frozenset({4, 5, 6, 7})  # April-July
_NCE_SLOPE = 21.06
_STD_NORMAL = NormalDist()


@cache
def nce_from_percentile(p: int) -> int:
    """NCE = 50 + 21.06 * inverse-normal(p / 100), rounded half UP, clipped to 1..99.

    Half-up (``floor(x + 0.5)``) rather than Python's banker's ``round``; percentiles 0 and
    100 (where the inverse normal is infinite) clip to 1 and 99. Cached: an export asks for
    the same 101 percentiles over and over (a refused percentile raises every time).
    """
    if not 0 <= p <= 100:
        raise ValueError(f"percentile must be in 0..100: {p}")
    if p in (0, 100):
        return 1 if p == 0 else 99
    nce = math.floor(50 + _NCE_SLOPE * _STD_NORMAL.inv_cdf(p / 100) + 0.5)
    return min(99, max(1, nce))


def format_quantile(q: int) -> str:
    """Quantile measure as printed: ``EM150Q`` for -150 (Emerging), else ``420Q``."""
    return f"EM{-q}Q" if q < 0 else f"{q}Q"


@dataclass(frozen=True, slots=True)
class CutScores:
    """Per grade (K, 1-12), ascending ``(min_quantile, label)`` thresholds.

    A measure gets the label of the highest threshold it reaches; a measure below the first
    threshold still gets the first (lowest) label. A grade missing from a (district's own)
    table has no performance level.
    """

    by_grade: Mapping[str, tuple[tuple[int, str], ...]]

    def __post_init__(self) -> None:
        table: dict[str, tuple[tuple[int, str], ...]] = {}
        for raw, thresholds in self.by_grade.items():
            grade = normalize_grade(raw)
            steps = tuple((int(q), str(label)) for q, label in thresholds)
            if grade == "PK" or not steps:
                raise ValueError(f"cut scores need K-12 grades with thresholds, got {raw!r}")
            mins = [q for q, _ in steps]
            if any(a >= b for a, b in pairwise(mins)):
                raise ValueError(f"cut scores for grade {grade} must strictly increase: {mins}")
            table[grade] = steps
        object.__setattr__(self, "by_grade", MappingProxyType(table))

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Sequence[Sequence[int | str]]]) -> CutScores:
        """Build from config data such as ``{"K": [[-400, "Below Basic"], [0, "Basic"]]}``."""
        return cls({g: tuple((int(q), str(lbl)) for q, lbl in ts) for g, ts in raw.items()})


def _default_table() -> dict[str, tuple[tuple[int, str], ...]]:
    # (Basic, Proficient, Advanced) minimums; Below Basic starts at the scale floor EM400Q.
    mins = {
        "K": (0, 150, 300), "1": (150, 300, 450), "2": (300, 450, 600),
        "3": (425, 575, 725), "4": (525, 675, 825), "5": (625, 775, 925),
        "6": (700, 850, 1000), "7": (765, 915, 1065), "8": (825, 975, 1125),
        "9": (875, 1025, 1175), "10": (920, 1070, 1220), "11": (960, 1110, 1260),
        "12": (1000, 1150, 1300),
    }  # fmt: skip
    return {
        grade: ((-400, "Below Basic"), (b, "Basic"), (p, "Proficient"), (a, "Advanced"))
        for grade, (b, p, a) in mins.items()
    }


DEFAULT_CUT_SCORES = CutScores(_default_table())


def performance_level(quantile: int, grade: str, cuts: CutScores) -> str | None:
    """Label for ``quantile`` at the student's ``grade``; ``None`` for PreK (not on the scale)
    and for a grade the table does not cover."""
    g = normalize_grade(grade)
    if g == "PK":
        return None
    thresholds = cuts.by_grade.get(g)
    if not thresholds:
        return None
    label = thresholds[0][1]
    for minimum, name in thresholds:
        if quantile >= minimum:
            label = name
    return label


@dataclass(frozen=True, slots=True)
class BenchmarkCells:
    performance_level: str | None
    percentile_rank: int | None
    nce: int | None


def benchmark_display(
    student_grade: str,
    test_date: date,
    percentile: int | None,
    quantile: int,
    cuts: CutScores = DEFAULT_CUT_SCORES,
) -> BenchmarkCells:
    """Export values for one benchmark result, applying the document's PreK and K rules.

    PreK: nothing. Kindergarten: percentile and NCE only for tests taken April-July.
    Otherwise percentile and NCE whenever a percentile is present.
    """
    grade = normalize_grade(student_grade)
    if grade == "PK":
        return BenchmarkCells(None, None, None)
    level = performance_level(quantile, grade, cuts)
    if percentile is None or not percentile_shown(grade, test_date):
        return BenchmarkCells(level, None, None)
    return BenchmarkCells(level, percentile, nce_from_percentile(percentile))


def percentile_shown(student_grade: str, test_date: date) -> bool:
    """Whether a result's percentile rank and NCE are exported (when it has a percentile):
    never for PreK; for Kindergarten only for tests taken April-July."""
    grade = normalize_grade(student_grade)
    return grade != "PK" and (grade != "K" or test_date.month in KINDERGARTEN_PERCENTILE_MONTHS)
