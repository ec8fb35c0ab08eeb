"""Unit tests for lesson pass rules and grade ordering."""

import pytest

from abacus.domain.passing import (
    count_passed_attempts,
    grade_rank,
    is_on_grade_level,
    lesson_passes,
    normalize_grade,
    prek2_completion_passes,
    quiz_passes,
)


@pytest.mark.parametrize(
    ("kind", "score", "passes"),
    [
        ("pre", 79, False),
        ("pre", 79.99, False),
        ("pre", 80, True),
        ("pre", 100, True),
        ("post", 69, False),
        ("post", 69.5, False),
        ("post", 70, True),
        ("post", 75, True),
        ("post", 0, False),
    ],
)
def test_quiz_thresholds(kind: str, score: float, passes: bool) -> None:
    assert quiz_passes(kind, score) is passes


@pytest.mark.parametrize("score", [-1, 100.5, float("nan"), float("inf")])
def test_quiz_score_out_of_range_raises(score: float) -> None:
    with pytest.raises(ValueError, match="percentage"):
        quiz_passes("pre", score)


def test_unknown_quiz_kind_raises() -> None:
    with pytest.raises(ValueError):
        quiz_passes("mid", 90)


@pytest.mark.parametrize(
    ("collected", "available", "passes"),
    [(5, 5, True), (4, 5, False), (1, 1, True), (0, 0, False), (0, 3, False), (6, 5, False)],
)
def test_prek2_tokens(collected: int, available: int, passes: bool) -> None:
    assert prek2_completion_passes(collected, available) is passes


def test_prek2_negative_tokens_raise() -> None:
    with pytest.raises(ValueError, match="negative"):
        prek2_completion_passes(-1, 3)


def test_lesson_passes_per_product() -> None:
    assert lesson_passes("g3plus", pre_quiz=80) is True
    assert lesson_passes("g3plus", pre_quiz=79, post_quiz=70) is True
    assert lesson_passes("g3plus", pre_quiz=79, post_quiz=69) is False
    assert lesson_passes("g3plus", post_quiz=70) is True
    assert lesson_passes("g3plus") is False
    assert lesson_passes("prek2", tokens_collected=3, tokens_available=3) is True
    assert lesson_passes("prek2", tokens_collected=2, tokens_available=3) is False
    assert lesson_passes("prek2", pre_quiz=100) is False  # quizzes do not apply to PreK-2
    with pytest.raises(ValueError):
        lesson_passes("grade7")


def test_an_attempt_passes_at_most_once() -> None:
    outcomes = [
        ("a1", True),
        ("a1", True),
        ("a2", False),
        ("a3", False),
        ("a3", True),
        ("a1", True),
    ]
    assert count_passed_attempts(outcomes) == 2
    assert count_passed_attempts([]) == 0


@pytest.mark.parametrize(
    ("raw", "norm"),
    [("PK", "PK"), ("pk", "PK"), ("K", "K"), ("k", "K"), ("KG", "K"), ("kg", "K"),
     ("1", "1"), ("01", "1"), ("09", "9"), ("10", "10"), ("12", "12")],
)  # fmt: skip
def test_normalize_grade(raw: str, norm: str) -> None:
    assert normalize_grade(raw) == norm


@pytest.mark.parametrize(
    "raw", ["", "0", "00", "13", "001", " 5", "5 ", "P", "Kindergarten", "-1", "²"]
)
def test_normalize_grade_rejects(raw: str) -> None:
    with pytest.raises(ValueError, match="not a grade"):
        normalize_grade(raw)


def test_grade_rank_order() -> None:
    assert [grade_rank(g) for g in ("PK", "K", "KG", "1", "05", "12")] == [-1, 0, 0, 1, 5, 12]


@pytest.mark.parametrize(
    ("lesson", "student", "on"),
    [("3", "3", True), ("4", "3", True), ("2", "3", False), ("K", "PK", True),
     ("PK", "K", False), ("K", "KG", True), ("12", "1", True), ("1", "12", False),
     ("10", "9", True), ("9", "10", False)],
)  # fmt: skip
def test_is_on_grade_level(lesson: str, student: str, on: bool) -> None:
    assert is_on_grade_level(lesson, student) is on
