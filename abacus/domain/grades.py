"""Grade levels: the one list (PK, K, 1-12), its order, spellings, and the PreK-2 band."""

from __future__ import annotations

import re
from functools import cache

__all__ = [
    "GRADES",
    "GRADES_SQL",
    "PREK2_GRADES",
    "grade_rank",
    "normalize_grade",
    "product_for_grade",
    "sql_is_prek2",
]

GRADES: tuple[str, ...] = ("PK", "K", *(str(g) for g in range(1, 13)))
# Grades whose learning environment is PreK-2 when a student has no usage in the export range.
PREK2_GRADES: tuple[str, ...] = GRADES[:4]
# The same list as a ClickHouse array literal, for queries that order grades.
GRADES_SQL = "[" + ",".join(f"'{g}'" for g in GRADES) + "]"
_RANK = {grade: rank for rank, grade in enumerate(GRADES, start=-1)}
_NUMERIC_GRADE = re.compile(r"[0-9]{1,2}")


@cache
def normalize_grade(raw: str) -> str:
    """``PK``, ``K``/``KG`` (any case) or ``1``-``12`` with an optional leading zero.
    Cached: an export normalises the same few spellings hundreds of thousands of times."""
    upper = raw.upper()
    if upper in ("K", "KG"):
        return "K"
    if upper == "PK":
        return "PK"
    if _NUMERIC_GRADE.fullmatch(raw) and 1 <= int(raw) <= 12:
        return str(int(raw))
    raise ValueError(f"not a grade level (PK, K, KG, 1-12): {raw!r}")


def grade_rank(grade: str) -> int:
    """Order of a grade: PK=-1, K=0, 1..12 (accepts anything :func:`normalize_grade` does)."""
    return _RANK[normalize_grade(grade)]


def product_for_grade(grade: str) -> str:
    """The learning environment of a grade: PK-2 practise in ``prek2``, 3 and up in ``g3plus``."""
    return "prek2" if normalize_grade(grade) in PREK2_GRADES else "g3plus"


def sql_is_prek2(column: str) -> str:
    """SQL that is true when ``column`` (a normalised grade, or blank) is in the PreK-2 band."""
    return f"indexOf({GRADES_SQL}, {column}) <= {len(PREK2_GRADES)}"
