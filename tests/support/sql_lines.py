"""Run `abacus.export.lines` on given rows in a real ClickHouse engine (chDB), in its own
process: `python -m tests.support.sql_lines IN OUT`.

IN is a pickle of ``[(config, rows, teachers), ...]``: rows of `EXPORT_COLUMNS`, loaded
into a table with the export query's very column types (created from the query itself),
then formatted by `lines_sql` with `line_params(config, teachers)`. OUT gets, per case,
the lines in order, or the error's text. chDB allows one data path per process, so this
never runs inside pytest's.
"""

from __future__ import annotations

import pickle
import sys
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

from abacus.district import DistrictConfig
from abacus.errors import StorageError
from abacus.export.lines import line_params, lines_sql
from abacus.export.query import EXPORT_COLUMNS, ExportQuery, ExportScope, export_sql
from abacus.settings import AbacusSettings, ClickHouseSettings
from abacus.store.store import Store

TABLE = "export_rows"


def run(cases: list[tuple[DistrictConfig, list[Any], list[tuple[str, str]]]]) -> list[Any]:
    with tempfile.TemporaryDirectory(prefix="abacus-sql-lines-") as home:
        store = Store.open(AbacusSettings(home=Path(home), clickhouse=ClickHouseSettings()))
        store.migrate()
        db = store.database
        day = date(2025, 9, 1)
        empty = ExportQuery("none", day, day, day, "both", ExportScope("district", "x"))
        columns = store.read(f"DESCRIBE ({export_sql(db)})", empty.params())
        assert tuple(c[0] for c in columns) == EXPORT_COLUMNS
        typed = ", ".join(f"{name} {kind}" for name, kind, *_ in columns)
        store.execute(f"CREATE TABLE {db}.{TABLE} ({typed}) ENGINE = Memory")
        out: list[Any] = []
        for config, rows, teachers in cases:
            store.execute(f"TRUNCATE TABLE {db}.{TABLE}")
            store.load_rows(f"{db}.{TABLE}", EXPORT_COLUMNS, rows)
            sql = lines_sql(f"SELECT * FROM {db}.{TABLE}", config.cut_score_table())
            try:
                out.append([line for (line,) in store.read(sql, line_params(config, teachers))])
            except StorageError as exc:
                out.append(str(exc))
        store.close()
    return out


if __name__ == "__main__":
    source, target = map(Path, sys.argv[1:3])
    target.write_bytes(pickle.dumps(run(pickle.loads(source.read_bytes()))))
