"""`abacus bench freshness`: ingest freshness while a large export runs in the same worker.

One worker on a fresh embedded broker over the `abacus bench export` data set (100k
students x 180 school days by default), ingesting single-event records at a steady rate.
Freshness (record creation → stored and committed, the worker's own
`abacus_ingest_freshness_seconds`) is measured first with nothing else running ("calm"),
then while the worker answers an export request for the whole district ("export"), and
the p99s are compared. Both ClickHouse lane modes run in the same run, on the same data:
`shared` (one client and thread for everything: an export's query stream holds every
ingest insert back, as before the lanes) and `separate` (the default: ingest on its own
lane). The load generator runs on the same machine, as in `abacus bench ingest`.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from rich.console import Console

from abacus.bench.export import ADMIN, DISTRICT, YEAR_START, _school_day, generate
from abacus.bench.ingest import _histogram, _quantile
from abacus.bench.ingest_data import encode_records, make_events
from abacus.bench.report import report
from abacus.district import DistrictConfig
from abacus.embedded.broker import EmbeddedBroker, free_port
from abacus.kafka.export_requests import send_request, wait_status
from abacus.kafka.topics import ensure_topics
from abacus.kafka_clients import aiokafka_config
from abacus.roster.records import config_value
from abacus.settings import AbacusSettings, ClickHouseSettings
from abacus.store.store import Store
from consumers.lag import LagReader

__all__ = ["run_freshness_bench"]

MODES = ("shared", "separate")
_FRESHNESS = "abacus_ingest_freshness_seconds"
_console = Console()

Buckets = list[tuple[float, float]]


class SteadyProducer(threading.Thread):
    """Sends prepared records at ``rate`` records/s until told to stop, from the start again
    when they run out (a repeated event costs the worker as much as a new one: it is
    decoded, validated and stored again, and absorbed by its event_id)."""

    def __init__(
        self, settings: AbacusSettings, records: list[tuple[bytes, bytes]], rate: float
    ) -> None:
        super().__init__(daemon=True)
        self.settings = settings
        self.records = records
        self.rate = rate
        self.halt = threading.Event()
        self.sent = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._send())
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            self.error = exc

    async def _send(self) -> None:
        producer = AIOKafkaProducer(**aiokafka_config(self.settings.broker), linger_ms=5)
        await producer.start()
        topic = self.settings.topics.name(self.settings.topics.events)
        started = time.perf_counter()
        try:
            while not self.halt.is_set():
                key, value = self.records[self.sent % len(self.records)]
                delay = started + self.sent / self.rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                await producer.send(topic, key=key, value=value)
                self.sent += 1
        finally:
            await producer.stop()


def run_freshness_bench(
    *, students: int, days: int, rate: float, calm_s: float, out_dir: Path
) -> Path:
    """Load the data set, then measure both lane modes; report and return the JSON path."""
    with (
        tempfile.TemporaryDirectory(prefix="abacus-bench-fresh-") as tmp,
        EmbeddedBroker(port=free_port()) as broker,
    ):
        home = Path(tmp) / "home"
        settings = AbacusSettings(
            home=home,
            broker={"bootstrap": broker.bootstrap},
            topics={"prefix": "bench."},
            clickhouse=ClickHouseSettings(),  # always embedded: a throwaway store
        )
        ensure_topics(settings)
        started = time.perf_counter()
        counts = _load(settings, students, days)
        _console.print(
            f"loaded {students:,} students x {days} school days ("
            + ", ".join(f"{t} {n:,}" for t, n in counts.items())
            + f") in {time.perf_counter() - started:.0f} s"
        )
        asyncio.run(_publish_config(settings))
        # A minute of records per mode, each mode its own (sent again when they run out).
        per_mode = int(rate * 60)
        records = encode_records(make_events(per_mode * len(MODES), first_seed=5_000), batch=False)
        results = []
        for i, mode in enumerate(MODES):
            mine = records[i * per_mode : (i + 1) * per_mode]
            results.append(_run_mode(settings, Path(tmp), mode, mine, rate, calm_s, days))
            _console.print(f"{mode}: {results[-1]}")
    by_mode = {r["lanes"]: r for r in results}
    extra = {
        "students": students,
        "days": days,
        "records_per_s": rate,
        "calm_seconds": calm_s,
        "table_rows": counts,
        "p99_during_export_separate_vs_shared": (
            by_mode["separate"]["export_p99_s"] / by_mode["shared"]["export_p99_s"]
        ),
    }
    _console.print(
        "freshness = record creation -> stored and committed (the worker's histogram, "
        "interpolated in its buckets); calm = no export running; export = while the worker "
        "answered one export request for the whole district; ratio = export p99 / calm p99"
    )
    return report("freshness", results, out_dir, extra)


def _load(settings: AbacusSettings, students: int, days: int) -> dict[str, int]:
    """The `abacus bench export` data set in the worker's home, merged (then closed:
    the worker opens the same chDB path next)."""
    store = Store.open(settings)
    try:
        store.migrate()
        db = settings.clickhouse.database
        counts = generate(store, db, students, days)
        for table in counts:
            store.execute(f"OPTIMIZE TABLE {db}.{table} FINAL")
        return counts
    finally:
        store.close()


async def _publish_config(settings: AbacusSettings) -> None:
    config = DistrictConfig(
        district_id=DISTRICT, name="Bench District", timezone="America/Chicago",
        school_year_start=YEAR_START.strftime("%m-%d"),
    )  # fmt: skip
    producer = AIOKafkaProducer(**aiokafka_config(settings.broker), acks="all")
    await producer.start()
    topics = settings.topics
    value = config_value(config, "bench", int(time.time() * 1000))
    await producer.send_and_wait(
        topics.name(topics.district_config), key=DISTRICT.encode(), value=value
    )
    await producer.stop()


def _env(settings: AbacusSettings, mode: str, web_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ABACUS_")}
    env.update(
        ABACUS_HOME=str(settings.home),
        ABACUS_BROKER__BOOTSTRAP=settings.broker.servers,
        ABACUS_TOPICS__PREFIX=settings.topics.prefix,
        ABACUS_APP_ID=settings.app_id,
        ABACUS_WEB__PORT=str(web_port),
        ABACUS_LOG_LEVEL="warning",
        ABACUS_CLICKHOUSE__LANES=mode,
    )
    return env


def _wait(predicate: Any, timeout: float, what: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited {proc.returncode} while waiting for {what}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.2)


def _ready(web: str) -> bool:
    try:
        with urllib.request.urlopen(f"{web}/readyz", timeout=1) as resp:  # noqa: S310 - our own web
            return bool(resp.status == 200)
    except OSError:
        return False


def _agents_caught_up(settings: AbacusSettings) -> bool:
    """The roster consumer's group has read everything (the restore republishes the roster
    from ClickHouse at the first start, and the roster consumer stores it again)."""
    t = settings.topics
    topics = [t.name(n) for n in (t.roster_users, t.roster_students, t.roster_links,
                                  t.district_config)]  # fmt: skip
    with LagReader(settings.broker, client_id="abacus-bench") as reader:
        rows = reader.snapshot(settings.roster_group, topics, with_seconds=False)
    return all(r.lag == 0 for r in rows if r.topic in topics)


def _run_mode(
    settings: AbacusSettings,
    tmp: Path,
    mode: str,
    records: list[tuple[bytes, bytes]],
    rate: float,
    calm_s: float,
    days: int,
) -> dict[str, Any]:
    port = free_port()
    web = f"http://127.0.0.1:{port}"
    log = tmp / f"worker-{mode}.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "abacus", "worker"],
        env=_env(settings, mode, port),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    producer = SteadyProducer(settings, records, rate)
    try:
        _wait(lambda: _ready(web), 600, "/readyz", proc)
        _wait(lambda: _agents_caught_up(settings), 600, "the roster consumer to catch up", proc)
        producer.start()
        time.sleep(3)  # warm-up
        h0 = _histogram(f"{web}/metrics", _FRESHNESS)
        time.sleep(calm_s)
        h1 = _histogram(f"{web}/metrics", _FRESHNESS)
        request_id = f"bench-{mode}-{uuid.uuid4().hex[:8]}"
        send_request(
            settings,
            {"request_id": request_id, "district_id": DISTRICT, "requester": ADMIN,
             "product": "both", "range": "custom", "start": YEAR_START.isoformat(),
             "end": _school_day(days - 1).isoformat()},
        )  # fmt: skip
        done = wait_status(settings, request_id, 1800)
        h2 = _histogram(f"{web}/metrics", _FRESHNESS)
    finally:
        producer.halt.set()
        producer.join(timeout=60)
        proc.terminate()
        proc.wait(timeout=180)
    if producer.error is not None:
        raise RuntimeError(f"load generator failed: {producer.error!r}")
    if done.get("status") != "completed":
        raise RuntimeError(f"export {request_id} ended {done}")
    calm, during = _delta(h0, h1), _delta(h1, h2)
    calm_p99, export_p99 = _quantile(calm, 0.99), _quantile(during, 0.99)
    return {
        "lanes": mode,
        "export_s": float(done["seconds"]),
        "export_rows": int(done["rows"]),
        "calm_records": int(calm[-1][1]),
        "calm_p50_s": _quantile(calm, 0.5),
        "calm_p99_s": calm_p99,
        "export_records": int(during[-1][1]),
        "export_p50_s": _quantile(during, 0.5),
        "export_p99_s": export_p99,
        "p99_ratio": export_p99 / calm_p99,
    }


def _delta(before: Buckets, after: Buckets) -> Buckets:
    return [(le, a - b) for (le, a), (_, b) in zip(after, before, strict=True)]
