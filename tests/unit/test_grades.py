"""Unit tests for the one grade list: spellings, order, the PreK-2 band and its SQL form."""

import pytest

from abacus.domain.grades import (
    GRADES,
    GRADES_SQL,
    grade_rank,
    normalize_grade,
    product_for_grade,
    sql_is_prek2,
)


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
    ("grade", "product"),
    [("PK", "prek2"), ("K", "prek2"), ("1", "prek2"), ("02", "prek2"), ("3", "g3plus"),
     ("12", "g3plus")],
)  # fmt: skip
def test_product_for_grade(grade: str, product: str) -> None:
    assert product_for_grade(grade) == product


def test_the_sql_forms_say_what_the_python_list_says() -> None:
    # The export query orders grades and picks the PreK-2 band with these literals.
    assert GRADES_SQL == "['PK','K','1','2','3','4','5','6','7','8','9','10','11','12']"
    assert tuple(g.strip("'") for g in GRADES_SQL.strip("[]").split(",")) == GRADES
    assert sql_is_prek2("s.grade") == f"indexOf({GRADES_SQL}, s.grade) <= 4"
