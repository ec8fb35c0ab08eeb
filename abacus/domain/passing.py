"""Lesson pass rules (Grade 3+ quizzes, PreK-2 tokens) and grade-level ordering."""

from __future__ import annotations

import math
import re
from collections.abc import Hashable, Iterable
from enum import StrEnum

__all__ = [
    "GRADES",
    "POST_QUIZ_PASS",
    "PRE_QUIZ_PASS",
    "Product",
    "QuizKind",
    "count_passed_attempts",
    "grade_rank",
    "is_on_grade_level",
    "lesson_passes",
    "normalize_grade",
    "prek2_completion_passes",
    "quiz_passes",
]

PRE_QUIZ_PASS = 80.0
POST_QUIZ_PASS = 70.0

GRADES: tuple[str, ...] = ("PK", "K", *(str(g) for g in range(1, 13)))
_RANK = {grade: rank for rank, grade in enumerate(GRADES, start=-1)}
_NUMERIC_GRADE = re.compile(r"[0-9]{1,2}")


class Product(StrEnum):
    PREK2 = "prek2"
    G3PLUS = "g3plus"


class QuizKind(StrEnum):
    PRE = "pre"
    POST = "post"


def quiz_passes(kind: str, score: float) -> bool:
    """Grade 3+: a pre-quiz passes at >= 80, a post-quiz at >= 70 (score in percent, 0-100)."""
    quiz = QuizKind(kind)
    if not math.isfinite(score) or not 0 <= score <= 100:
        raise ValueError(f"quiz score must be a percentage in [0, 100]: {score!r}")
    return score >= (PRE_QUIZ_PASS if quiz is QuizKind.PRE else POST_QUIZ_PASS)


def prek2_completion_passes(collected: int, available: int) -> bool:
    """PreK-2: a lesson passes when every token was collected (and there were tokens)."""
    if collected < 0 or available < 0:
        raise ValueError(f"token counts must not be negative: {collected}/{available}")
    return available > 0 and collected == available


def lesson_passes(
    product: str,
    *,
    pre_quiz: float | None = None,
    post_quiz: float | None = None,
    tokens_collected: int | None = None,
    tokens_available: int | None = None,
) -> bool:
    """Whether one lesson attempt passes under its product's rule (missing inputs do not pass)."""
    if Product(product) is Product.PREK2:
        if tokens_collected is None or tokens_available is None:
            return False
        return prek2_completion_passes(tokens_collected, tokens_available)
    return (pre_quiz is not None and quiz_passes(QuizKind.PRE, pre_quiz)) or (
        post_quiz is not None and quiz_passes(QuizKind.POST, post_quiz)
    )


def count_passed_attempts(outcomes: Iterable[tuple[Hashable, bool]]) -> int:
    """Distinct attempt keys with at least one passing outcome: an attempt passes at most once."""
    return len({key for key, passed in outcomes if passed})


def normalize_grade(raw: str) -> str:
    """``PK``, ``K``/``KG`` (any case) or ``1``-``12`` with an optional leading zero."""
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


def is_on_grade_level(lesson_grade: str, student_grade: str) -> bool:
    """A lesson is on (or above) grade level when its grade is >= the student's grade."""
    return grade_rank(lesson_grade) >= grade_rank(student_grade)
