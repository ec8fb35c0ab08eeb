"""Unit tests for the district config file (`district.toml`)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from abacus.district import (
    DEFAULT_CUT_SCORES_TABLE,
    ConfigError,
    DistrictConfig,
    load_district_config,
)
from abacus.domain.benchmarks import performance_level

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "district" / "district.toml"

MINIMAL = 'name = "Test District"\ntimezone = "America/New_York"\nschool_year_start = "07-01"\n'


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "district.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_config_loads() -> None:
    config = load_district_config(EXAMPLE)
    assert config.district_id == "maple-valley"
    assert config.name == "Maple Valley Unified"
    assert config.timezone == "America/Chicago"
    assert config.school_year_start == "08-15"
    assert set(config.buildings) == {"Oak Elementary", "Cedar Middle School"}
    assert config.username_column == "District_Data_1"
    assert config.alt_student_number_column == "District_Data_2"


def test_minimal_config_uses_defaults(tmp_path: Path) -> None:
    config = load_district_config(_write(tmp_path, MINIMAL))
    assert config.district_id is None
    assert config.buildings == {}
    assert config.username_column == "District_Data_1"
    assert config.alt_student_number_column == "District_Data_2"
    assert set(config.cut_scores) == {"K", *(str(n) for n in range(1, 13))}
    assert config.cut_scores["3"] == (
        (-400.0, "Below Basic"),
        (425.0, "Basic"),
        (575.0, "Proficient"),
        (725.0, "Advanced"),
    )


def test_district_id_from_cli_overrides_file() -> None:
    assert load_district_config(EXAMPLE, district_id="other-id").district_id == "other-id"


def test_default_cut_scores_table_shape() -> None:
    assert list(DEFAULT_CUT_SCORES_TABLE) == ["K", *(str(n) for n in range(1, 13))]
    for rows in DEFAULT_CUT_SCORES_TABLE.values():
        assert [label for _, label in rows] == ["Below Basic", "Basic", "Proficient", "Advanced"]
        assert rows[0][0] == -400
        mins = [q for q, _ in rows]
        assert mins == sorted(set(mins))
    proficient = [rows[2][0] for rows in DEFAULT_CUT_SCORES_TABLE.values()]
    assert proficient == sorted(set(proficient))  # rising with grade
    assert DEFAULT_CUT_SCORES_TABLE["K"][1] == (0, "Basic")
    assert DEFAULT_CUT_SCORES_TABLE["12"][3] == (1300, "Advanced")


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2025, 8, 14), date(2024, 8, 15)),
        (date(2025, 8, 15), date(2025, 8, 15)),
        (date(2025, 8, 16), date(2025, 8, 15)),
        (date(2025, 12, 31), date(2025, 8, 15)),
        (date(2026, 1, 1), date(2025, 8, 15)),
        (date(2026, 6, 30), date(2025, 8, 15)),
    ],
)
def test_school_year_start_for_across_the_boundary(day: date, expected: date) -> None:
    assert load_district_config(EXAMPLE).school_year_start_for(day) == expected


def test_school_year_start_for_january_first(tmp_path: Path) -> None:
    text = MINIMAL.replace('"07-01"', '"01-01"')
    config = load_district_config(_write(tmp_path, text))
    assert config.school_year_start_for(date(2025, 12, 31)) == date(2025, 1, 1)
    assert config.school_year_start_for(date(2026, 1, 1)) == date(2026, 1, 1)


def test_timezone_for_building_override(tmp_path: Path) -> None:
    text = (
        MINIMAL
        + '[buildings."West Campus"]\ntimezone = "America/Denver"\n'
        + '[buildings."East Campus"]\n'
    )
    config = load_district_config(_write(tmp_path, text))
    assert config.timezone_for("West Campus") == "America/Denver"
    assert config.timezone_for("East Campus") == "America/New_York"
    assert config.timezone_for("Unknown School") == "America/New_York"
    assert config.timezone_for(None) == "America/New_York"


def test_custom_cut_scores_replace_default(tmp_path: Path) -> None:
    text = MINIMAL + (
        "[cut_scores]\n"
        'KG = [[-10000, "Low"], [100, "High"]]\n'
        '03 = [[-10000, "Low"], [500, "Mid"], [800, "High"]]\n'
    )
    config = load_district_config(_write(tmp_path, text))
    assert set(config.cut_scores) == {"K", "3"}
    cuts = config.cut_score_table()
    assert performance_level(99, "K", cuts) == "Low"
    assert performance_level(100, "KG", cuts) == "High"
    assert performance_level(500, "3", cuts) == "Mid"
    assert performance_level(499, "3", cuts) == "Low"
    assert performance_level(500, "4", cuts) is None


def test_performance_level_with_defaults() -> None:
    cuts = load_district_config(EXAMPLE).cut_score_table()
    assert performance_level(-300, "3", cuts) == "Below Basic"
    assert performance_level(425, "3", cuts) == "Basic"
    assert performance_level(600, "03", cuts) == "Proficient"
    assert performance_level(1200, "8", cuts) == "Advanced"
    assert performance_level(500, "PK", cuts) is None


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('timezone = "America/Chicago"\nschool_year_start = "08-15"\n', "name"),
        (MINIMAL.replace("America/New_York", "Mars/Olympus_Mons"), "timezone"),
        (MINIMAL.replace('"07-01"', '"7-1"'), "school_year_start"),
        (MINIMAL.replace('"07-01"', '"13-01"'), "school_year_start"),
        (MINIMAL.replace('"07-01"', '"02-29"'), "school_year_start"),
        (MINIMAL + 'username_column = "District_Data_6"\n', "username_column"),
        (MINIMAL + 'alt_student_number_column = "Email"\n', "alt_student_number_column"),
        (MINIMAL + 'username_column = "District_Data_2"\n', "alt_student_number_column"),
        (MINIMAL + 'district_id = "bad id!"\n', "district_id"),
        (MINIMAL + 'colour = "blue"\n', "colour"),
        (MINIMAL + '[buildings.Oak]\ntimezone = "Nowhere/Town"\n', "buildings.Oak.timezone"),
        (MINIMAL + '[cut_scores]\n3 = [[500, "A"], [400, "B"]]\n', "cut_scores"),
        (MINIMAL + '[cut_scores]\n13 = [[500, "A"]]\n', "cut_scores"),
        (MINIMAL + '[cut_scores]\n3 = [["low", "A"]]\n', "cut_scores.3"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_district_config(_write(tmp_path, text))
    message = str(info.value)
    assert key in message
    assert "\n" not in message
    assert message.startswith("district.toml: ")


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_district_config(_write(tmp_path, "name = \n"))
    with pytest.raises(ConfigError, match="cannot read"):
        load_district_config(tmp_path / "nope.toml")


def test_config_error_is_value_error_and_model_is_frozen() -> None:
    assert issubclass(ConfigError, ValueError)
    config = load_district_config(EXAMPLE)
    with pytest.raises(ValueError, match="frozen"):
        config.name = "changed"  # type: ignore[misc]
    assert isinstance(config, DistrictConfig)
