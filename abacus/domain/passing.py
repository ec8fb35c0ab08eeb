"""Lesson pass rules: Grade 3+ quizzes, PreK-2 tokens (the export's SQL counts the passes)."""

from __future__ import annotations

import math
from enum import StrEnum

__all__ = [
    "POST_QUIZ_PASS",
    "PRE_QUIZ_PASS",
    "Product",
    "QuizKind",
    "prek2_completion_passes",
    "quiz_passes",
]

PRE_QUIZ_PASS = 80.0
POST_QUIZ_PASS = 70.0


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
