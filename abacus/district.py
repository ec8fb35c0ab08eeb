"""The district config file (`district.toml`): name, time zones, school year, cut scores."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from datetime import date
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from abacus.roster.validation import DISTRICT_DATA_COLUMNS, normalize_grade

__all__ = [
    "DEFAULT_CUT_SCORES_TABLE",
    "DISTRICT_DATA_COLUMNS",
    "BuildingConfig",
    "ConfigError",
    "DistrictConfig",
    "load_district_config",
]

DistrictDataColumn = Literal[
    "District_Data_1", "District_Data_2", "District_Data_3", "District_Data_4", "District_Data_5"
]

# Default performance-level cut scores on the Quantile scale: grade -> [min_quantile, label],
# ascending. The first threshold of each grade is a floor far below any real measure.
DEFAULT_CUT_SCORES_TABLE: dict[str, list[tuple[int, str]]] = {
    "K": [(-10000, "Below Basic"), (50, "Basic"), (175, "Proficient"), (300, "Advanced")],
    "1": [(-10000, "Below Basic"), (175, "Basic"), (300, "Proficient"), (425, "Advanced")],
    "2": [(-10000, "Below Basic"), (300, "Basic"), (425, "Proficient"), (575, "Advanced")],
    "3": [(-10000, "Below Basic"), (425, "Basic"), (575, "Proficient"), (700, "Advanced")],
    "4": [(-10000, "Below Basic"), (525, "Basic"), (675, "Proficient"), (800, "Advanced")],
    "5": [(-10000, "Below Basic"), (625, "Basic"), (775, "Proficient"), (900, "Advanced")],
    "6": [(-10000, "Below Basic"), (700, "Basic"), (850, "Proficient"), (975, "Advanced")],
    "7": [(-10000, "Below Basic"), (775, "Basic"), (925, "Proficient"), (1050, "Advanced")],
    "8": [(-10000, "Below Basic"), (850, "Basic"), (1000, "Proficient"), (1125, "Advanced")],
    "9": [(-10000, "Below Basic"), (900, "Basic"), (1050, "Proficient"), (1175, "Advanced")],
    "10": [(-10000, "Below Basic"), (950, "Basic"), (1100, "Proficient"), (1225, "Advanced")],
    "11": [(-10000, "Below Basic"), (1000, "Basic"), (1150, "Proficient"), (1275, "Advanced")],
    "12": [(-10000, "Below Basic"), (1025, "Basic"), (1175, "Proficient"), (1300, "Advanced")],
}

_DISTRICT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_MONTH_DAY_RE = re.compile(r"^(\d{2})-(\d{2})$")

CutScores = tuple[tuple[float, str], ...]


class ConfigError(ValueError):
    """The district config file is missing, unreadable or has a bad key (one-line message)."""


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA time zone {value!r}") from exc
    return value


def _grade_key(value: str) -> str:
    try:
        return normalize_grade(value)
    except ValueError:
        raise ValueError(f"unknown grade {value!r} (use PK, K or 1-12)") from None


class BuildingConfig(BaseModel):
    """Per-building overrides; an unset time zone falls back to the district's."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timezone: str | None = None

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return None if value is None else _check_timezone(value)


class DistrictConfig(BaseModel):
    """One district's settings as read from `district.toml`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    district_id: str | None = None
    name: str
    timezone: str
    buildings: dict[str, BuildingConfig] = {}
    school_year_start: str
    # An explicit table replaces the default entirely; grades it omits have no levels.
    cut_scores: dict[str, CutScores] = {
        grade: tuple((float(q), label) for q, label in rows)
        for grade, rows in DEFAULT_CUT_SCORES_TABLE.items()
    }
    username_column: DistrictDataColumn = "District_Data_1"
    alt_student_number_column: DistrictDataColumn = "District_Data_2"

    @field_validator("district_id")
    @classmethod
    def _district_id(cls, value: str | None) -> str | None:
        if value is not None and not _DISTRICT_ID_RE.match(value):
            raise ValueError(f"{value!r} must be letters, digits, '-' or '_'")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return _check_timezone(value)

    @field_validator("school_year_start")
    @classmethod
    def _school_year_start(cls, value: str) -> str:
        match = _MONTH_DAY_RE.match(value)
        if not match:
            raise ValueError(f"{value!r} must be MM-DD")
        month, day = int(match[1]), int(match[2])
        try:
            date(2001, month, day)  # a non-leap year: 02-29 would not exist every year
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a day of the year") from exc
        return value

    @field_validator("cut_scores", mode="before")
    @classmethod
    def _cut_scores_grades(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            return value
        out: dict[str, Any] = {}
        for key, rows in value.items():
            grade = _grade_key(str(key))
            if grade in out:
                raise ValueError(f"grade {key!r} is listed twice")
            out[grade] = rows
        return out

    @field_validator("cut_scores")
    @classmethod
    def _cut_scores_rows(cls, value: dict[str, CutScores]) -> dict[str, CutScores]:
        for grade, rows in value.items():
            if not rows:
                raise ValueError(f"grade {grade}: needs at least one [min_quantile, label]")
            mins = [q for q, _ in rows]
            if any(b <= a for a, b in pairwise(mins)):
                raise ValueError(f"grade {grade}: thresholds must rise strictly")
            if any(not label.strip() for _, label in rows):
                raise ValueError(f"grade {grade}: labels must not be blank")
        return value

    @model_validator(mode="after")
    def _distinct_columns(self) -> DistrictConfig:
        if self.username_column == self.alt_student_number_column:
            raise ValueError(
                "alt_student_number_column: must differ from username_column"
                f" ({self.username_column})"
            )
        return self

    @property
    def school_year_start_month_day(self) -> tuple[int, int]:
        month, day = self.school_year_start.split("-")
        return int(month), int(day)

    def school_year_start_for(self, d: date) -> date:
        """The most recent school-year start on or before `d`."""
        month, day = self.school_year_start_month_day
        start = date(d.year, month, day)
        return start if start <= d else date(d.year - 1, month, day)

    def timezone_for(self, building: str | None) -> str:
        """The IANA zone for a building: its override if set, else the district's."""
        override = self.buildings.get(building) if building is not None else None
        return override.timezone if override and override.timezone else self.timezone

    def performance_level(self, grade: str, quantile: float) -> str | None:
        """The label of the highest cut score at or below `quantile`, or None."""
        try:
            rows = self.cut_scores.get(_grade_key(grade), ())
        except ValueError:
            return None
        label = None
        for minimum, name in rows:
            if quantile >= minimum:
                label = name
        return label


def _error_message(path: Path, exc: ValidationError) -> str:
    first = exc.errors()[0]
    key = ".".join(str(part) for part in first["loc"])
    if first["type"] == "missing":
        reason = "missing required key"
    elif first["type"] == "extra_forbidden":
        reason = "unknown key"
    else:
        reason = first["msg"].removeprefix("Value error, ")
    key = key.removesuffix(".[key]")  # pydantic names a bad dict key "<key>.[key]"
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    prefix = f"{path.name}: {key}: " if key else f"{path.name}: "  # model checks name their key
    return f"{prefix}{reason}{more}"


def load_district_config(path: Path, *, district_id: str | None = None) -> DistrictConfig:
    """Read and validate `district.toml`; `district_id` (e.g. from the CLI) overrides the file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path.name}: not UTF-8 text") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path.name}: invalid TOML: {exc}") from exc
    if district_id is not None:
        data["district_id"] = district_id
    try:
        return DistrictConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_error_message(path, exc)) from exc
