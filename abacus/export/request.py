"""Export requests as they arrive on `export-requests`, and their validation (pure)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from abacus.district import DISTRICT_ID_RE, DistrictConfig
from abacus.errors import ExportRequestError
from abacus.export.files import REQUEST_ID_RE
from abacus.export.query import ExportScope

__all__ = [
    "ExportRange",
    "ExportRequest",
    "RangeError",
    "Requester",
    "parse_request",
    "resolve_range",
    "scope_for",
]

# User_Type -> whose students (1 teacher, 2 building, 3 district, 4 admin = the district).
_SCOPES: dict[int, Literal["teacher", "building", "district"]] = {
    1: "teacher",
    2: "building",
    3: "district",
    4: "district",
}


class ExportRequest(BaseModel):
    """One staff member's request for the Student Data Export."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    request_id: str = Field(pattern=f"^{REQUEST_ID_RE.pattern}$")
    district_id: str = Field(pattern=f"^{DISTRICT_ID_RE.pattern}$")
    requester: str = Field(min_length=1, max_length=64, description="Employee_ID")
    product: Literal["prek2", "g3plus", "both"]
    range: Literal["ytd", "custom"] = "ytd"
    start: date | None = None
    end: date | None = None
    corrected_headers: bool = False


@dataclass(frozen=True)
class ExportRange:
    """The inclusive local-date range an export covers, and its school year's start."""

    start: date
    end: date
    school_year_start: date


def parse_request(payload: bytes) -> ExportRequest:
    """Decode a request record; a bad one raises ExportRequestError with the reason."""
    try:
        doc: Any = json.loads(payload)
        return ExportRequest.model_validate(doc)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExportRequestError(f"request is not JSON: {exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "request"
        raise ExportRequestError(f"invalid request: {where}: {first['msg']}") from exc


class RangeError(ExportRequestError):
    """A range the rules refuse: the reason (for the status topic), the form field it is
    about, and the same in plain words for a person (the portal shows it at the field)."""

    def __init__(self, reason: str, *, field: str, plain: str) -> None:
        super().__init__(reason)
        self.field = field
        self.plain = plain


def resolve_range(request: ExportRequest, config: DistrictConfig, today: date) -> ExportRange:
    """The dates to export; ``today`` is the district's local date.

    Only previous days can be exported. YTD is school-year start to yesterday. A custom
    range must have start <= end, end before today, and start within end's school year.
    The portal's form runs these same rules (abacus/export/form.py).
    """
    yesterday = today - timedelta(days=1)
    if request.range == "ytd":
        if request.start is not None or request.end is not None:
            raise RangeError(
                "a YTD request takes no start or end date",
                field="range",
                plain="Year to date takes no start or end date.",
            )
        year_start = config.school_year_start_for(yesterday)
        return ExportRange(year_start, yesterday, year_start)
    if request.start is None or request.end is None:
        missing = "start" if request.start is None else "end"
        raise RangeError(
            "a custom range needs both start and end dates",
            field=missing,
            plain=f"Enter a{'n' if missing == 'end' else ''} {missing} date.",
        )
    if request.start > request.end:
        raise RangeError(
            f"start {request.start} is after end {request.end}",
            field="start",
            plain="The start date is after the end date. Choose a start on or before the end.",
        )
    if request.end >= today:
        raise RangeError(
            f"only previous days can be exported: end {request.end} is not before today "
            f"({today}, district time)",
            field="end",
            plain=(
                f"The end date is today or later. Only previous days can be exported: "
                f"choose {yesterday.isoformat()} or earlier."
            ),
        )
    year_start = config.school_year_start_for(request.end)
    if request.start < year_start:
        raise RangeError(
            f"start {request.start} is before the school year that began {year_start}",
            field="start",
            plain=(
                f"The start date is before the school year, which began on "
                f"{year_start.isoformat()}. Choose that day or later."
            ),
        )
    return ExportRange(request.start, request.end, year_start)


@dataclass(frozen=True)
class Requester:
    """The requesting staff member as the roster has them (an active user of the district)."""

    employee_id: str
    user_type: int
    buildings: tuple[str, ...]
    email: str


def scope_for(request: ExportRequest, requester: Requester | None) -> ExportScope:
    """Whose students the requester may export; ExportRequestError when nobody's."""
    if requester is None:
        raise ExportRequestError(
            f"requester {request.requester!r} is not an active user of this district"
        )
    kind = _SCOPES.get(requester.user_type)
    if kind is None:
        raise ExportRequestError(f"requester has an unknown User_Type {requester.user_type}")
    return ExportScope(kind, requester.employee_id, requester.buildings)
