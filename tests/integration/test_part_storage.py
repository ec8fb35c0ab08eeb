"""The embedded store keeps small parts packed (abacus/store/part_storage.py): every
MergeTree table gets the setting, inserts write packed parts, and a deletion, a merge and a
restart keep every row that should be kept (tests/support/part_storage.py, in its own
process)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.own_process import json_result

TABLES = ("events", "daily_facts", "lesson_facts")


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return json_result("tests.support.part_storage", tmp_path_factory.mktemp("part-storage"))


def test_every_mergetree_table_packs_small_parts(result: dict[str, Any]) -> None:
    assert len(result["settings"]) > 20  # every table of the schema, not a chosen few
    assert all(result["settings"].values()), result["settings"]
    assert result["settings_again"] == result["settings"]


def test_an_ingest_batch_is_stored_in_packed_parts(result: dict[str, Any]) -> None:
    assert result["inserted_parts"] == {t: ["Packed"] for t in TABLES}


@pytest.mark.parametrize("table", TABLES)
def test_a_deletion_and_a_merge_remove_the_student_and_keep_the_rest(
    result: dict[str, Any], table: str
) -> None:
    rows, _ = result["inserted"][table]
    assert rows > 1000
    assert result["student_rows"][table] > 0
    assert result["after_delete"][table][0] == rows - result["student_rows"][table]
    assert result["merged_parts"][table] == ["Packed"]  # a merge under the size stays packed


@pytest.mark.parametrize("table", TABLES)
def test_a_restart_reads_the_packed_parts_back(result: dict[str, Any], table: str) -> None:
    assert result["migrated_again"] == []
    assert result["reopened"][table] == result["after_delete"][table]  # count and checksum
