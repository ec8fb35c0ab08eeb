"""Which tables `pack_small_parts` changes, and which store calls it (no engine)."""

from __future__ import annotations

from typing import Any

from abacus.store.part_storage import PACKED_BELOW_BYTES, SETTING, pack_small_parts


class Tables:
    """A client answering the system.tables query and recording the statements run."""

    def __init__(self, tables: dict[str, str]) -> None:
        self.tables = tables
        self.commands: list[str] = []

    def query(self, sql: str, parameters: dict[str, Any]) -> Any:
        assert "system.tables" in sql
        assert parameters == {"db": "abacus"}
        return type("Result", (), {"result_rows": list(self.tables.items())})()

    def command(self, sql: str) -> None:
        self.commands.append(sql)


def _create(settings: str) -> str:
    return f"CREATE TABLE abacus.t (a UInt8) ENGINE = MergeTree ORDER BY a SETTINGS {settings}"


def test_only_tables_without_the_setting_are_altered() -> None:
    client = Tables(
        {
            "events": _create("index_granularity = 8192"),
            "daily_facts": _create(f"index_granularity = 8192, {SETTING} = {PACKED_BELOW_BYTES}"),
            # another value that starts with the same digits is not the wanted one
            "lesson_facts": _create(f"{SETTING} = {PACKED_BELOW_BYTES}0"),
        }
    )
    changed = pack_small_parts(client, "abacus")  # type: ignore[arg-type]
    assert changed == ["events", "lesson_facts"]
    assert client.commands == [
        f"ALTER TABLE abacus.`{name}` MODIFY SETTING {SETTING} = {PACKED_BELOW_BYTES}"
        for name in changed
    ]


def test_a_second_run_changes_nothing() -> None:
    client = Tables({"events": _create(f"{SETTING} = {PACKED_BELOW_BYTES}")})
    assert pack_small_parts(client, "abacus") == []  # type: ignore[arg-type]
    assert client.commands == []
