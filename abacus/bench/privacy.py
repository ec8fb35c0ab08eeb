"""`abacus bench privacy`: deletions on the export benchmark's data, against a full read.

Everything happens in this process: chDB in a fresh temp home, the export benchmark's
district (`abacus.bench.export.generate`: roster, daily and lesson facts, benchmarks) plus
the raw `events` (one per daily fact row), pending marks and audit rows naming students,
and a second district a tenth its size with the same student ids; then OPTIMIZE … FINAL,
so every table is one merged part as in a steady state (the worst case for a mutation,
which rewrites each part holding a deleted row).

Each deletion runs through the privacy consumer itself (`PrivacyConsumer.handle`: plan,
synchronous mutations, verification, receipt), with the Kafka side left out (no topics to
tombstone here). The baseline, run before each deletion in the same run, is a full-table
``count()`` that reads every column of every table the deletion reaches
(``SELECT count() FROM t WHERE NOT ignore(*)``): the cost of reading every byte once,
where a deletion must read and rewrite the parts. Ratios are deletion / baseline.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from abacus.bench.export import DISTRICT, generate, peak_rss_mb
from abacus.bench.report import report
from abacus.catalog import TABLES
from abacus.privacy.deny import DenyEntry, DenyList
from abacus.privacy.receipt import TopicResult
from abacus.settings import AbacusSettings, ClickHouseSettings
from abacus.store.store import Store
from consumers.privacy import PrivacyConsumer

__all__ = ["run_privacy_bench"]

OTHER = "bench-other"
PRIVACY_ADMIN = "P0001"
_console = Console()


class _NoTopics:
    """The benchmark has no broker: nothing to publish or tombstone."""

    def publish_deny(self, entries: Sequence[DenyEntry]) -> None:
        return None

    def clear_roster_keys(
        self, district_id: str, students: Collection[str] | None
    ) -> list[TopicResult]:
        return []


async def _no_status(doc: dict[str, Any]) -> None:
    return None


async def _no_barrier() -> None:
    return None


def run_privacy_bench(students: int, days: int, deleted: int, out_dir: Path) -> Path:
    """Generate the data, then time one student's, ``deleted`` students' and a whole
    district's deletion, each after a baseline full read; report and write JSON."""
    if not 1 <= deleted < students:
        raise ValueError("need 1 <= deleted < students")
    with tempfile.TemporaryDirectory(prefix="abacus-bench-privacy-") as tmp:
        settings = AbacusSettings(home=Path(tmp), clickhouse=ClickHouseSettings())
        store = Store.open(settings)
        try:
            return _run(settings, store, students, days, deleted, out_dir)
        finally:
            store.close()


def _run(
    settings: AbacusSettings, store: Store, students: int, days: int, deleted: int, out: Path
) -> Path:
    db = settings.clickhouse.database
    store.migrate()
    started = time.perf_counter()
    generate(store, db, students, days)
    generate(store, db, max(10, students // 10), days, district=OTHER)
    counts = _more(store, db)
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    for table in counts:
        store.execute(f"OPTIMIZE TABLE {db}.{table} FINAL")
    optimize_s = time.perf_counter() - started
    _console.print(
        f"generated {students:,} + {max(10, students // 10):,} students x {days} school days: "
        + ", ".join(f"{t} {n:,}" for t, n in counts.items() if n)
        + f" in {load_s:.1f} s; OPTIMIZE FINAL {optimize_s:.1f} s"
    )
    consumer = PrivacyConsumer(
        settings, store, DenyList(), _NoTopics(), _no_status, barrier=_no_barrier,
        forget_district=lambda d: None, exports_lock=asyncio.Lock(), version="bench",
    )  # fmt: skip
    tables = [t for t, n in counts.items() if n]
    runs = [
        ("single student", DISTRICT, ["S0000007"]),
        (f"{deleted:,} students", DISTRICT, _spread(students, deleted)),
        ("whole district", OTHER, None),
    ]
    rows, results = [], []
    for name, district, ids in runs:
        baseline = _baseline(store, db, tables)
        seconds, receipt = _delete(consumer, district, ids)
        results.append({"run": name, "baseline_s": baseline, "seconds": seconds,
                        "rows_removed": receipt["rows_removed"],
                        "verified": receipt["verified"]})  # fmt: skip
        rows.append(
            {
                "run": name,
                "students": len(ids) if ids else "all",
                "rows removed": receipt["rows_removed"],
                "baseline s": baseline,
                "deletion s": seconds,
                "ratio": seconds / baseline,
                "verified": receipt["verified"],
            }
        )
        if not receipt["verified"]:
            raise RuntimeError(f"{name}: rows remain after the deletion")
    extra = {
        "students": students,
        "days": days,
        "deleted": deleted,
        "table_rows": counts,
        "load_seconds": round(load_s, 2),
        "optimize_seconds": round(optimize_s, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "runs": results,
        "baseline_median_s": statistics.median(r["baseline_s"] for r in results),
        "targets": {"single student <= 60 s": results[0]["seconds"] <= 60.0},
    }
    _console.print(
        "baseline = SELECT count() FROM t WHERE NOT ignore(*) over every table the deletion"
        " reaches (a full read of every column), run just before each deletion; deletion ="
        " PrivacyConsumer.handle (plan, ALTER … DELETE with mutations_sync = 2, verification,"
        " receipt; no Kafka)"
    )
    path = report("privacy", rows, out, extra)
    for target, met in extra["targets"].items():
        _console.print(f"target {target}: {'met' if met else 'NOT met'}")
    return path


def _spread(students: int, count: int) -> list[str]:
    """``count`` student ids spread over the whole district (not one block of the key)."""
    step = students // count
    return [f"S{n * step + 1:07d}" for n in range(count)]


def _baseline(store: Store, db: str, tables: list[str]) -> float:
    started = time.perf_counter()
    for table in tables:
        store.read(f"SELECT count() FROM {db}.{table} WHERE NOT ignore(*)")  # noqa: S608
    return time.perf_counter() - started


def _delete(
    consumer: PrivacyConsumer, district: str, ids: list[str] | None
) -> tuple[float, dict[str, Any]]:
    request = {
        "request_id": f"bench-{district}-{len(ids or [])}-{time.time_ns()}",
        "district_id": district,
        "requester": PRIVACY_ADMIN,
        "kind": "students" if ids else "district",
        "students": ids or [],
    }
    started = time.perf_counter()
    outcome = asyncio.run(consumer.handle(json.dumps(request).encode()))
    seconds = time.perf_counter() - started
    if outcome.name != "completed":
        raise RuntimeError(f"deletion {request['request_id']} {outcome.name}")
    path = consumer.settings.receipts_dir / f"{request['request_id']}.json"
    return seconds, dict(json.loads(path.read_text()))


def _more(store: Store, db: str) -> dict[str, int]:
    """What the export benchmark does not fill: raw events (one per daily fact), pending
    marks (1 event in 1,000), audit rows (downloads, and 1 student in 100 named), and an
    admin per district to request the deletions; returns rows per table."""
    statements = [
        f"""INSERT INTO {db}.events (district_id, student_id, event_id, event_type, product,
               occurred_at, payload, src_partition, src_offset)
        SELECT district_id, student_id, event_id,
               ['session_ended', 'lesson_started', 'quiz_submitted'][1 + cityHash64(event_id) % 3],
               product, occurred_at,
               concat('{{"lesson_id":"L', toString(cityHash64(event_id) % 180), '"}}'),
               cityHash64(student_id) % 4, rowNumberInAllBlocks()
        FROM {db}.daily_facts
        SETTINGS max_insert_threads = 2""",  # noqa: S608
        f"""INSERT INTO {db}.pending_facts
        SELECT district_id, event_id, 1 FROM {db}.events WHERE cityHash64(event_id) % 1000 = 0""",  # noqa: S608
        f"""INSERT INTO {db}.audit_log
        SELECT now64(3), district_id, 'D0001', 'download',
               if(cityHash64(student_id) % 100 = 0, student_id, concat('exp-', student_id)),
               '', '127.0.0.1'
        FROM {db}.roster_students""",  # noqa: S608
        f"""INSERT INTO {db}.roster_users (district_id, employee_id, username, email, first_name,
               last_name, user_type, buildings, is_active, import_id, version, updated_at)
        SELECT district_id, '{PRIVACY_ADMIN}', 'privacy', '', 'Pat', 'Admin', 4, [], 1,
               'bench', 1, now64(3)
        FROM (SELECT DISTINCT district_id FROM {db}.roster_students)""",  # noqa: S608
    ]
    for statement in statements:
        store.execute(statement)
    names = [t.name for t in TABLES if t.district_column is not None and not t.privacy_record]
    return {t: int(store.read(f"SELECT count() FROM {db}.{t}")[0][0]) for t in names}  # noqa: S608
