"""Migration 0065 (8 → 2 partitions of the per-student tables) on a store with data, run
again after a crash left a half-made copy: every row kept, the new key, 0064's skip
indexes kept, nothing left over (tests/support/repartition.py, in its own process)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.own_process import json_result

TABLES = ("events", "daily_facts", "lesson_facts")


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return json_result("tests.support.repartition", tmp_path_factory.mktemp("repartition"))


def test_it_runs_on_data_held_in_eight_partitions(result: dict[str, Any]) -> None:
    assert result["applied"] == ["0065_two_student_partitions.sql"]
    for table in TABLES:
        assert result["before_keys"][table] == "cityHash64(student_id) % 8"
        assert len(result["before_partitions"][table]) > 2  # the data was really spread


@pytest.mark.parametrize("table", TABLES)
def test_every_row_is_kept(result: dict[str, Any], table: str) -> None:
    rows, _ = result["before"][table]
    assert rows > 500
    assert result["after"][table] == result["before"][table]  # count and checksum


@pytest.mark.parametrize("table", TABLES)
def test_the_tables_are_in_two_partitions(result: dict[str, Any], table: str) -> None:
    assert result["keys"][table] == "cityHash64(student_id) % 2"
    assert result["partitions"][table] == ["0", "1"]


def test_skip_indexes_are_kept_and_no_copy_is_left(result: dict[str, Any]) -> None:
    assert result["indexes"] == ["daily_facts.local_date_minmax", "lesson_facts.pair_bloom"]
    assert not [t for t in result["tables"] if t.endswith("_repartitioned")]
