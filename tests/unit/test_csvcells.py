"""Unit tests for the export header, cell formatting and CSV writing."""

import io
from datetime import date

import pytest

from abacus.domain.csvcells import (
    CORRECTED_HEADER,
    EXPORT_HEADER,
    export_header,
    fmt_average,
    fmt_bool,
    fmt_date,
    fmt_teachers,
    neutralize,
    write_rows,
)

# Copied by hand from the export document's field table, in order (45 fields).
DOCUMENT_FIELDS = (
    "First Name",
    "Last Name",
    "Username",
    "student_information_number",
    "alt_student_infomration_number",
    "grade_level",
    "is_active",
    "is_ell",
    "is_iep",
    "learning_environment",
    "school",
    "teachers",
    "benchmark_1_performance_level",
    "benchmark_1_instructional_level",
    "benchmark_1_quantile_measure",
    "benchmark_1_date",
    "benchmark_1_percentile_rank",
    "benchmark_1_nce",
    "benchmark_2_performance_level",
    "benchmark_2_quantile_measure",
    "benchmark_2_date",
    "benchmark_2_percentile_rank",
    "benchmark_2_nce",
    "benchmark_3_performance_level",
    "benchmark_3_instructional_level",
    "benchmark_3_quantile_measure",
    "benchmark_3_date",
    "benchmark_3_percentile_rank",
    "benchmark_3_nce",
    "most_recent_benchmark_performance_level",
    "lessons_attempted",
    "total_lessons_passed",
    "on_grade_level_pass_rate",
    "below_ grade_level_pass_rate",
    "lessons_passed_by_pre_quiz",
    "pre_quiz_average",
    "post_quiz_average",
    "problems_attempted",
    "earned_points",
    "earned_tokens",
    "math_helps",
    "live_helps",
    "total_math_time",
    "school_time",
    "evening_weekend_time",
)
DOCUMENT_FIELD_COUNT = 45


def test_export_header_is_the_documents_table() -> None:
    assert EXPORT_HEADER == DOCUMENT_FIELDS
    assert len(EXPORT_HEADER) == DOCUMENT_FIELD_COUNT
    assert EXPORT_HEADER[0] == "First Name"
    assert EXPORT_HEADER[-1] == "evening_weekend_time"
    assert "benchmark_2_instructional_level" not in EXPORT_HEADER
    assert export_header() is EXPORT_HEADER


def test_corrected_header_fixes_only_the_two_spellings() -> None:
    assert export_header(corrected=True) is CORRECTED_HEADER
    assert len(CORRECTED_HEADER) == DOCUMENT_FIELD_COUNT
    diffs = [
        (i, a, b)
        for i, (a, b) in enumerate(zip(EXPORT_HEADER, CORRECTED_HEADER, strict=True))
        if a != b
    ]
    assert diffs == [
        (4, "alt_student_infomration_number", "alt_student_information_number"),
        (33, "below_ grade_level_pass_rate", "below_grade_level_pass_rate"),
    ]


@pytest.mark.parametrize(
    ("cell", "safe"),
    [
        ("=1+2", "'=1+2"),
        ("+SUM(A1:A2)", "'+SUM(A1:A2)"),
        ("-2", "-2"),
        ("-3.5", "-3.5"),
        ("-3.25", "-3.25"),
        ("+7", "+7"),
        ("@x", "'@x"),
        ("-", "'-"),
        ("-2+3", "'-2+3"),
        ("-1e3", "-1e3"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("Smith", "Smith"),
        ("1+2", "1+2"),
        ("", ""),
        ("12:05", "12:05"),
        ("EM150Q", "EM150Q"),
    ],
)
def test_neutralize(cell: str, safe: str) -> None:
    assert neutralize(cell) == safe


def test_simple_formatters() -> None:
    assert fmt_bool(True) == "True"
    assert fmt_bool(False) == "False"
    assert fmt_date(date(2026, 3, 9)) == "2026-03-09"
    assert fmt_date(None) == ""


def test_fmt_teachers_sorted_by_last_then_first_and_deduplicated() -> None:
    names = [("Bob", "Zeta"), ("Bob", "Adams"), ("Ann", "Adams"), ("Bob", "Adams"), ("cy", "adams")]
    assert fmt_teachers(names) == "Ann Adams;Bob Adams;cy adams;Bob Zeta"
    assert fmt_teachers([]) == ""


@pytest.mark.parametrize(
    ("total", "count", "text"),
    [
        (0, 0, ""),
        (245, 3, "82"),  # 81.67
        (161, 2, "81"),  # 80.5 rounds up
        (159, 2, "80"),  # 79.5 rounds up
        (150.5, 2, "75"),  # 75.25
        (100, 1, "100"),
        (0, 4, "0"),
    ],
)
def test_fmt_average(total: float, count: int, text: str) -> None:
    assert fmt_average(total, count) == text


def test_fmt_average_rejects_negative_count() -> None:
    with pytest.raises(ValueError, match="negative"):
        fmt_average(10, -1)


def test_write_rows_rfc4180_and_neutralized() -> None:
    out = io.StringIO()
    rows = [["=HYPERLINK(x)", "-5", "O'Brien, Pat", 'say "hi"', ""], ["a", "b", "c", "d", "e"]]
    count = write_rows(rows, out, header=["h1", "h2", "h3", "h4", "h5"])
    assert count == 2
    assert out.getvalue() == (
        'h1,h2,h3,h4,h5\r\n\'=HYPERLINK(x),-5,"O\'Brien, Pat","say ""hi""",\r\na,b,c,d,e\r\n'
    )


def test_write_rows_rejects_bad_rows() -> None:
    with pytest.raises(ValueError, match="row 1 has 1 cells"):
        write_rows([["a"]], io.StringIO(), header=["h1", "h2"])
    with pytest.raises(TypeError, match="formatted strings"):
        write_rows([["a", 5]], io.StringIO())  # type: ignore[list-item]
