"""The portal's export form: the consumer's own rules, each rejection at its field, and the
status rows the portal lists (pure)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest

from abacus.district import DistrictConfig
from abacus.errors import ExportRequestError
from abacus.export.form import ExportForm, check_form
from abacus.export.jobs import ExportJobView
from abacus.export.request import parse_request, resolve_range

CONFIG = DistrictConfig(name="M", timezone="America/Chicago", school_year_start="08-15")
TODAY = date(2026, 5, 1)


def check(**fields: str) -> tuple[object, ExportForm]:
    form = ExportForm.from_post({"product": "both", "range": "custom", **fields})
    return check_form(
        form, request_id="exp-1", district_id="m", requester="0101", config=CONFIG, today=TODAY
    )


def test_a_good_custom_range_becomes_the_consumers_request() -> None:
    request, form = check(start="2026-04-01", end="2026-04-30")
    assert form.errors == {}
    assert request is not None
    assert request.model_dump(exclude_none=True) == {
        "request_id": "exp-1", "district_id": "m", "requester": "0101", "product": "both",
        "range": "custom", "start": date(2026, 4, 1), "end": date(2026, 4, 30),
        "corrected_headers": False,
    }  # fmt: skip
    # what the consumer will parse from the record is the same request
    assert parse_request(request.model_dump_json().encode()) == request


def test_ytd_ignores_typed_dates() -> None:
    request, form = check(range="ytd", start="garbage", end="2030-01-01")
    assert form.errors == {}
    assert request is not None
    assert (request.range, request.start, request.end) == ("ytd", None, None)


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"start": "2026-04-02", "end": "2026-04-01"}, "start", "after the end date"),
        ({"start": "2026-04-01", "end": "2026-05-01"}, "end", "today or later"),
        ({"start": "2026-04-01", "end": "2026-06-01"}, "end", "choose 2026-04-30 or earlier"),
        ({"start": "2025-08-14", "end": "2026-04-01"}, "start", "began on 2025-08-15"),
        ({"start": "", "end": "2026-04-01"}, "start", "Enter a start date"),
        ({"start": "2026-04-01", "end": ""}, "end", "Enter an end date"),
        ({"start": "2026-02-30", "end": "2026-04-01"}, "start", "real date"),
        ({"product": "g4", "start": "2026-04-01", "end": "2026-04-02"}, "product", "grade"),
        ({"range": "week"}, "range", "YTD or Custom"),
    ],
)
def test_each_rejection_is_at_its_field_in_plain_words(
    fields: dict[str, str], field: str, words: str
) -> None:
    request, form = check(**fields)
    assert request is None
    assert list(form.errors) == [field]
    assert words in form.errors[field]
    # the consumer refuses the same range for the same reason
    if field in ("start", "end") and "real date" not in words and "Enter" not in words:
        doc = {"request_id": "r", "district_id": "m", "requester": "0101", "product": "both"}
        raw = parse_request(json.dumps({**doc, "range": "custom", **fields}).encode())
        with pytest.raises(ExportRequestError):
            resolve_range(raw, CONFIG, TODAY)


def test_the_date_inputs_go_up_to_yesterday_in_the_districts_date() -> None:
    assert ExportForm.bounds(CONFIG, TODAY) == (date(2025, 8, 15), date(2026, 4, 30))
    assert ExportForm.bounds(CONFIG, date(2026, 8, 15)) == (date(2025, 8, 15), date(2026, 8, 14))


def test_a_job_follows_its_status_documents_and_never_reopens() -> None:
    at = datetime(2026, 5, 1, 12, tzinfo=UTC)
    request, _ = check(range="ytd")
    assert request is not None
    job = ExportJobView.queued(request, at)
    assert (job.status_label, job.range_label, job.product_label) == (
        "Queued", "Year to date", "PreK-2 and Grade 3+",
    )  # fmt: skip
    later = at + timedelta(seconds=1)
    job = job.with_status(
        {"status": "accepted", "range": {"start": "2025-08-15", "end": "2026-04-30"}}, later
    )
    assert (job.status_label, job.range_label) == (
        "In progress", "Year to date: 2025-08-15 to 2026-04-30",
    )  # fmt: skip
    done = job.with_status({"status": "completed", "rows": 40, "bytes": 9000}, later)
    assert (done.status, done.rows, done.bytes, done.final) == ("completed", 40, 9000, True)
    assert done.version > job.version  # rises even at the same instant
    assert done.with_status({"status": "progress", "rows": 10}, later) == done
    failed = job.with_status({"status": "failed", "reason": "no"}, later)
    assert (failed.status_label, failed.reason) == ("Failed", "no")
    assert ExportJobView.from_row(done.row()) == done
