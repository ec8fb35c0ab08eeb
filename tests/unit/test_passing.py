"""Unit tests for the lesson pass rules that fact derivation applies (abacus.aggregation.derive)."""

import pytest

from abacus.domain.passing import prek2_completion_passes, quiz_passes


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
