"""The portal's Student Data Export form: its fields, defaults and checks (pure).

The checks are the export consumer's own (`parse_request`'s model and `resolve_range`), so
the portal and the consumer can never disagree; the form only adds parsing of what a
browser sends and places each rejection at its field, in plain words.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

from pydantic import ValidationError

from abacus.district import DistrictConfig
from abacus.export.request import ExportRequest, RangeError, resolve_range

__all__ = ["PRODUCTS", "RANGES", "ExportForm", "check_form"]

PRODUCTS = {"prek2": "Imagine Math PreK-2", "g3plus": "Imagine Math Grade 3+", "both": "Both"}
RANGES = {"ytd": "YTD (year to date)", "custom": "Custom"}


@dataclass(frozen=True)
class ExportForm:
    """What the form holds (as typed), and the rejections per field."""

    product: str = "both"
    range: str = "ytd"
    start: str = ""
    end: str = ""
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_post(cls, data: Mapping[str, str]) -> ExportForm:
        return cls(
            product=str(data.get("product", "")).strip(),
            range=str(data.get("range", "")).strip(),
            start=str(data.get("start", "")).strip(),
            end=str(data.get("end", "")).strip(),
        )

    @staticmethod
    def bounds(config: DistrictConfig, today: date) -> tuple[date, date]:
        """(the current school year's start, yesterday): the date inputs' defaults; the
        inputs go up to yesterday in the district's local date."""
        yesterday = today - timedelta(days=1)
        return config.school_year_start_for(yesterday), yesterday


def _date(raw: str, name: str, errors: dict[str, str]) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors[name] = f"Enter the {name} date as a real date, for example 2026-10-01."
        return None


def check_form(
    form: ExportForm,
    *,
    request_id: str,
    district_id: str,
    requester: str,
    config: DistrictConfig,
    today: date,
) -> tuple[ExportRequest | None, ExportForm]:
    """The request to send, or None and the form with its rejections at their fields."""
    errors: dict[str, str] = {}
    if form.product not in PRODUCTS:
        errors["product"] = "Choose the grade levels to export."
    if form.range not in RANGES:
        errors["range"] = "Choose YTD or Custom."
    custom = form.range == "custom"
    start = _date(form.start, "start", errors) if custom else None
    end = _date(form.end, "end", errors) if custom else None
    if errors:
        return None, ExportForm(form.product, form.range, form.start, form.end, errors)
    try:
        request = ExportRequest(
            request_id=request_id,
            district_id=district_id,
            requester=requester,
            product=form.product,  # type: ignore[arg-type]
            range=form.range,  # type: ignore[arg-type]
            start=start,
            end=end,
        )
        resolve_range(request, config, today)
    except RangeError as exc:
        errors[exc.field] = exc.plain
    except ValidationError as exc:  # cannot happen for checked fields; say so plainly
        errors["form"] = f"The request is not valid ({exc.error_count()} problem(s))."
    if errors:
        return None, ExportForm(form.product, form.range, form.start, form.end, errors)
    return request, form
