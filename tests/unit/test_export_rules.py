"""Export request rules, scope, links and one formatted row: the pure code the consumer runs."""

from __future__ import annotations

from datetime import date

import pytest

from abacus.district import DistrictConfig
from abacus.errors import AbacusError, ExportRequestError
from abacus.export.links import LinkError, sign_link, verify_link
from abacus.export.query import EXPORT_COLUMNS, ExportScope
from abacus.export.request import Requester, parse_request, resolve_range, scope_for
from abacus.export.rows import RowFormatter
from abacus.export.status import request_id_of

CONFIG = DistrictConfig(name="M", timezone="America/Chicago", school_year_start="08-15")
TODAY = date(2026, 5, 1)


def request(**fields: object) -> bytes:
    import json

    doc = {"request_id": "r1", "district_id": "m", "requester": "0401", "product": "both"}
    return json.dumps({**doc, **fields}).encode()


def test_ytd_is_school_year_start_to_yesterday() -> None:
    r = resolve_range(parse_request(request()), CONFIG, TODAY)
    assert (r.start, r.end, r.school_year_start) == (
        date(2025, 8, 15), date(2026, 4, 30), date(2025, 8, 15),
    )  # fmt: skip
    # On the first day of a school year, yesterday belongs to the previous one.
    r = resolve_range(parse_request(request()), CONFIG, date(2026, 8, 15))
    assert (r.start, r.end) == (date(2025, 8, 15), date(2026, 8, 14))


def test_a_custom_range_within_one_school_year_before_today() -> None:
    r = resolve_range(
        parse_request(request(range="custom", start="2026-04-01", end="2026-04-30")), CONFIG, TODAY
    )
    assert (r.start, r.end, r.school_year_start) == (
        date(2026, 4, 1), date(2026, 4, 30), date(2025, 8, 15),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"range": "custom", "start": "2026-04-02", "end": "2026-04-01"}, "is after end"),
        ({"range": "custom", "start": "2026-04-01", "end": "2026-05-01"}, "only previous days"),
        ({"range": "custom", "start": "2025-08-14", "end": "2025-09-01"}, "before the school"),
        ({"range": "custom", "start": "2026-04-01"}, "needs both start and end"),
        ({"start": "2026-04-01"}, "takes no start or end"),
    ],
)
def test_bad_ranges_are_refused_with_a_reason(fields: dict[str, str], reason: str) -> None:
    with pytest.raises(ExportRequestError, match=reason):
        resolve_range(parse_request(request(**fields)), CONFIG, TODAY)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff", "not JSON"),
        (b"[]", "invalid request"),
        (request(product="g4"), "invalid request: product"),
        (request(request_id="bad id"), "invalid request: request_id"),
        (request(extra=1), "invalid request: extra"),
    ],
)
def test_bad_records_are_refused_with_a_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(ExportRequestError, match=reason):
        parse_request(payload)


def test_request_id_of_even_a_bad_record() -> None:
    assert request_id_of(request()) == "r1"
    assert request_id_of(b"\xff") == request_id_of(None) == request_id_of(b"[1]") == "unknown"


@pytest.mark.parametrize(
    ("user_type", "kind"), [(1, "teacher"), (2, "building"), (3, "district"), (4, "district")]
)
def test_scope_follows_the_user_type(user_type: int, kind: str) -> None:
    staff = Requester("0401", user_type, ("Oak",), "")
    assert scope_for(parse_request(request()), staff) == ExportScope(kind, "0401", ("Oak",))  # type: ignore[arg-type]


def test_unknown_requesters_and_user_types_get_no_scope() -> None:
    with pytest.raises(ExportRequestError, match="not an active user"):
        scope_for(parse_request(request()), None)
    with pytest.raises(ExportRequestError, match="unknown User_Type 7"):
        scope_for(parse_request(request()), Requester("0401", 7, (), ""))


def test_links_verify_and_refuse_tampering_and_expiry() -> None:
    key = b"secret"
    link = sign_link("https://a.test/", "/exports/m/r1.csv", key=key, expires=100, requester="7")
    path, _, query = link.removeprefix("https://a.test").partition("?")
    params = dict(p.split("=", 1) for p in query.split("&"))
    assert verify_link(path, params, key=key, now=99) == "7"
    for bad, why in (
        ({**params, "by": "8"}, "bad signature"),
        ({**params, "expires": "200"}, "bad signature"),
        ({k: v for k, v in params.items() if k != "sig"}, "malformed"),
    ):
        with pytest.raises(LinkError, match=why):
            verify_link(path, bad, key=key, now=99)
    with pytest.raises(LinkError, match="bad signature"):
        verify_link("/exports/m/r2.csv", params, key=key, now=99)
    with pytest.raises(LinkError, match="expired"):
        verify_link(path, params, key=key, now=100)
    assert issubclass(LinkError, AbacusError)


def test_one_row_becomes_the_documents_cells() -> None:
    values = {name: 0 for name in EXPORT_COLUMNS} | {
        "student_id": "S9", "first_name": "Kim", "last_name": "Lee", "grade": "K",
        "building": "Oak", "is_ell": 1, "is_iep": 0, "is_active": 1,
        "district_data": ["kim9", "ALT9", "", "", ""], "environment": "prek2",
        "ever_g3": 1, "ever_prek2": 1, "school_ms": 7_260_000, "evening_ms": 60_000,
        "lessons_started": 4, "passed": 3, "passed_by_pre": 1, "passed_on_grade": 2,
        "pre_sum": 161.0, "pre_count": 2, "post_sum": 0.0, "post_count": 0, "tokens": 5,
        "points": 40, "problems": 12, "math_helps": 1, "live_helps": 0,
        "teachers": [("B", "Z"), ("A", "Y")],
        # (number, quantile, level, percentile, date, taken_at): K percentile only Apr-Jul
        "benchmarks": [
            (1, -20, "K", 60, date(2025, 9, 20), 1), (3, 310, "1", 99, date(2026, 4, 20), 3),
        ],
    }  # fmt: skip
    cells = RowFormatter(CONFIG).cells(tuple(values[name] for name in EXPORT_COLUMNS))
    assert cells == [
        "Kim", "Lee", "kim9", "S9", "ALT9", "K", "True", "True", "False", "PreK-2", "Oak",
        "A Y;B Z",
        "Below Basic", "K", "EM20Q", "2025-09-20", "", "",  # benchmark 1 (September: no pct)
        "", "", "", "", "",  # benchmark 2: none
        "Advanced", "1", "310Q", "2026-04-20", "99", "99",  # benchmark 3
        "Advanced",  # the latest one's level
        "4", "3", "2", "1", "1", "81", "", "12", "40", "5", "1", "0",
        "02:02", "02:01", "00:01",
    ]  # fmt: skip
