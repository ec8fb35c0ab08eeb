"""The district config file (`district.toml`): name, time zones, school year, cut scores."""

from __future__ import annotations

import json
import logging
import re
import tomllib
from collections.abc import Mapping
from datetime import date
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from abacus.domain.benchmarks import DEFAULT_CUT_SCORES
from abacus.domain.benchmarks import CutScores as CutScoreTable
from abacus.domain.grades import normalize_grade
from abacus.errors import AbacusError

__all__ = [
    "DEFAULT_CUT_SCORES_TABLE",
    "DISTRICT_DATA_COLUMNS",
    "DISTRICT_ID_RE",
    "BuildingConfig",
    "ConfigError",
    "DistrictConfig",
    "decode_stored_config",
    "load_district_config",
]

# The roster's free columns (2_students.csv); the export maps two of them (see below).
DISTRICT_DATA_COLUMNS = tuple(f"District_Data_{n}" for n in range(1, 6))
DistrictDataColumn = Literal[
    "District_Data_1", "District_Data_2", "District_Data_3", "District_Data_4", "District_Data_5"
]

# Default performance-level cut scores: the documented default of abacus.domain.benchmarks
# (one source), as grade -> [(min_quantile, label)], ascending.
DEFAULT_CUT_SCORES_TABLE: dict[str, list[tuple[int, str]]] = {
    grade: list(rows) for grade, rows in DEFAULT_CUT_SCORES.by_grade.items()
}

log = logging.getLogger(__name__)

# A district id names a folder of export files and appears in download URLs: keep it to
# letters, digits, '-' and '_' (use with fullmatch).
DISTRICT_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_MONTH_DAY_RE = re.compile(r"^(\d{2})-(\d{2})$")

CutScores = tuple[tuple[float, str], ...]


class ConfigError(AbacusError, ValueError):
    """The district config file is missing, unreadable or has a bad key (one-line message)."""


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA time zone {value!r}") from exc
    return value


def _grade_key(value: str) -> str:
    try:
        return normalize_grade(value.strip())
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
        if value is not None and not DISTRICT_ID_RE.fullmatch(value):
            raise ValueError(f"{value!r} must be up to 64 letters, digits, '-' or '_'")
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

    def cut_score_table(self) -> CutScoreTable:
        """The cut scores as the domain rules take them (abacus.domain.benchmarks)."""
        return CutScoreTable.from_mapping(
            {g: [(int(q), label) for q, label in rows] for g, rows in self.cut_scores.items()}
        )


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


def decode_stored_config(district_id: str, config_json: str) -> DistrictConfig | None:
    """A config as stored in the `districts` table; None (logged, no values) when unreadable."""
    try:
        return DistrictConfig.model_validate(
            {**json.loads(config_json), "district_id": district_id}
        )
    except ValueError as exc:  # JSONDecodeError and pydantic's ValidationError
        log.warning("skipping a stored district config: %s", type(exc).__name__)
        return None
