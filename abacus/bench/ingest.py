"""`abacus bench ingest`: end-to-end events/s of the worker against the raw loader baseline.

All read the same pre-loaded topic on a fresh embedded broker, each in its own process
with its own chDB. The product's clock runs from the moment its ingest service hands its
first batch over (before the whole worker is ready) until its group has committed every
offset (it commits only after the batch's facts are stored, so committed = aggregates
queryable); the baseline's from its start until the last insert returns. A third run is
the same worker without rollup maintenance (`ABACUS_BENCH_SKIP_ROLLUPS`), so the ratio of
the two is what rollups cost ingest. The generated school year lies in the past, so every
fact is late: each batch writes its rollup keys, and the rollup service rebuilds them in
the background while ingest runs. The clock then goes on until the rollups have caught up
(`abacus_rollups_behind` 0), reported as a second rate. The district's config is in each
worker's store before it starts (`_store_config`), as in production, where a district is
configured before its students' events arrive.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import date
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from rich.console import Console

from abacus.bench.report import report
from abacus.bench.worker_process import start_worker, stop_worker
from abacus.catalog import DISTRICTS
from abacus.district import DistrictConfig
from abacus.domain.grades import GRADES
from abacus.embedded.broker import EmbeddedBroker, free_port
from abacus.events.codec import Event, encode_batch, encode_event
from abacus.kafka.log_end import true_log_ends
from abacus.kafka.topics import ensure_topics
from abacus.kafka_clients import aiokafka_config
from abacus.roster.records import config_value, decode_value, district_row
from abacus.settings import AbacusSettings, ClickHouseSettings
from abacus.simulator import SimStudent, SimulationConfig, simulate
from abacus.store.store import Store
from consumers.lag import LagReader

__all__ = ["make_events", "run_ingest_bench"]

DISTRICT = "bench-district"
TZ = "America/Chicago"
_GRADES = GRADES[:10]  # PK-8
_STOP_GRACE_S = 60.0  # beyond the worker's drain timeout, before it is killed


def make_events(n: int, first_seed: int = 0) -> list[Event]:
    """At least ``n`` realistic events (a school year's worth per 200 students), cut to n."""
    out: list[Event] = []
    seed = first_seed
    while len(out) < n:
        students = [SimStudent(f"B{seed}-{i:04d}", _GRADES[i % len(_GRADES)]) for i in range(200)]
        out += simulate(
            students, SimulationConfig(DISTRICT, TZ, date(2025, 8, 18), date(2026, 6, 5), seed=seed)
        )
        seed += 1
    return out[:n]


def _records(events: list[Event], batch: bool) -> list[tuple[bytes, bytes]]:
    """(key, value) records: one per event, or per-student SDK batches of up to 50."""
    if not batch:
        return [(e["student_id"].encode(), encode_event(e)) for e in events]
    by_student: dict[str, list[Event]] = {}
    for e in events:
        by_student.setdefault(e["student_id"], []).append(e)
    return [
        (sid.encode(), encode_batch(items[i : i + 50]))
        for sid, items in by_student.items()
        for i in range(0, len(items), 50)
    ]


async def _paced(
    settings: AbacusSettings, records: list[tuple[bytes, bytes]], per_second: float
) -> dict[int, int]:
    """Send records at a steady rate (10 ms ticks); return the ends reached."""
    producer = AIOKafkaProducer(**aiokafka_config(settings.broker), linger_ms=5)
    await producer.start()
    topic = settings.topics.name(settings.topics.events)
    futures = []
    started = time.perf_counter()
    for i, (key, value) in enumerate(records):
        due = started + i / per_second
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        futures.append(await producer.send(topic, key=key, value=value))
    ends: dict[int, int] = {}
    for meta in await asyncio.gather(*futures):
        ends[meta.partition] = max(ends.get(meta.partition, 0), meta.offset + 1)
    await producer.stop()
    return ends


def _samples(url: str, name: str) -> list[Sample] | None:
    """The samples of the metric family ``name`` on a /metrics page (None when absent).
    A counter's family is named without `_total`; its samples keep it."""
    with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - our own web
        text = resp.read().decode()
    for family in text_string_to_metric_families(text):
        if family.name == name:
            return family.samples
    return None


def _metric(url: str, name: str) -> float:
    """The sum of a counter's or gauge's samples on a /metrics page (0 if absent)."""
    samples = _samples(url, name) or []
    return sum(s.value for s in samples if s.name in (name, f"{name}_total"))


def _histogram(url: str, name: str) -> list[tuple[float, float]]:
    """Cumulative (le, count) buckets of a histogram on a /metrics page."""
    samples = _samples(url, name) or []
    return [(float(s.labels["le"]), s.value) for s in samples if s.name == f"{name}_bucket"]


def _gauge(url: str, name: str) -> float | None:
    """A gauge's value on a /metrics page (None when absent)."""
    return next((s.value for s in _samples(url, name) or []), None)


def _wait_rollups(web: str, timeout: float = 3600) -> None:
    deadline = time.monotonic() + timeout
    while _gauge(f"{web}/metrics", "abacus_rollups_behind") != 0:
        if time.monotonic() > deadline:
            raise RuntimeError("the rollups did not catch up")
        time.sleep(0.1)


def _quantile(buckets: list[tuple[float, float]], q: float) -> float:
    """Linear interpolation inside the bucket holding the q-quantile (Prometheus-style)."""
    total = buckets[-1][1]
    if total <= 0:
        return float("nan")
    rank, lower, below = q * total, 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if le == float("inf"):
                return lower
            return lower + (le - lower) * ((rank - below) / max(count - below, 1e-9))
        lower, below = le, count
    return lower


def _config_value() -> bytes:
    """The bench district's config record."""
    config = DistrictConfig(
        district_id=DISTRICT, name="Bench", timezone=TZ, school_year_start="08-15"
    )
    return config_value(config, "bench", int(time.time() * 1000))


async def _produce(settings: AbacusSettings, events: list[Event], batch: bool) -> dict[int, int]:
    producer = AIOKafkaProducer(
        **aiokafka_config(settings.broker), linger_ms=20, max_batch_size=1 << 20, acks="all"
    )
    await producer.start()
    topics = settings.topics
    await producer.send_and_wait(
        topics.name(topics.district_config), key=DISTRICT.encode(), value=_config_value()
    )
    topic = topics.name(topics.events)
    futures = [await producer.send(topic, key=k, value=v) for k, v in _records(events, batch)]
    ends: dict[int, int] = {}
    for meta in await asyncio.gather(*futures):
        ends[meta.partition] = max(ends.get(meta.partition, 0), meta.offset + 1)
    await producer.stop()
    return ends


def _store_config(home: Path) -> None:
    """The district's config stored in a worker's home before it starts, as the roster
    consumer stores it (the same record is on the config topic too). A district is
    configured before its students' events arrive: without this the first events of the
    run were stored pending and their facts derived again once the roster consumer had
    stored the config (4 of 5.7 s of a 100k-event run, measured). chDB allows one data
    path per process and two workers' homes get the config, so each is stored by a
    process of its own, which has exited before the worker opens the same path."""
    proc = multiprocessing.get_context("spawn").Process(target=_store_config_in, args=(home,))
    proc.start()
    proc.join(timeout=300)
    if proc.exitcode is None:  # stuck: it must not hold the path the worker opens next
        proc.kill()
        proc.join()
    if proc.exitcode != 0:
        raise RuntimeError(f"storing the bench district's config failed (exit {proc.exitcode})")


def _store_config_in(home: Path) -> None:
    """`_store_config`'s work, in the process it starts."""
    store = Store.open(AbacusSettings(home=home, clickhouse=ClickHouseSettings()))
    try:
        store.migrate()
        _, row = district_row(DISTRICT, decode_value(_config_value()))
        store.insert_rows(DISTRICTS, [row])
    finally:
        store.close()


def _env(home: Path, bootstrap: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ABACUS_")}
    env.update(
        ABACUS_HOME=str(home),
        ABACUS_BROKER__BOOTSTRAP=bootstrap,
        ABACUS_TOPICS__PREFIX="bench.",
        ABACUS_LOG_LEVEL="warning",
    )
    env.update(extra or {})
    return env


def _peak_rss_mb(pid: int) -> list[float]:
    """Peak RSS of a process, then of each of its children (the ingest processes)."""
    proc = Path(f"/proc/{pid}")
    children = [
        int(child)
        for task in (proc / "task").iterdir()
        for child in (task / "children").read_text().split()
    ]
    peaks = []
    for one in (pid, *children):
        for line in Path(f"/proc/{one}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peaks.append(int(line.split()[1]) / 1024)
    return peaks


def _wait_committed(
    settings: AbacusSettings, group: str, ends: dict[int, int], topic: str | None = None
) -> None:
    """Return as soon as ``group`` has committed every end of ``topic`` (the events topic
    by default; polled every 20 ms over one connection, so the poll adds little to the
    time measured)."""
    topic = topic or settings.topics.name(settings.topics.events)
    with LagReader(settings.broker, client_id="abacus-bench") as reader:
        while True:
            committed = {
                tp.partition: offset
                for tp, offset in reader.committed(group).items()
                if tp.topic == topic
            }
            if all(committed.get(p, 0) >= end for p, end in ends.items()):
                return
            time.sleep(0.02)


def _log_ends(settings: AbacusSettings) -> dict[int, int]:
    """The events topic's ends now (Tansu's quirk read around: `true_log_ends`)."""
    topic = settings.topics.name(settings.topics.events)
    with LagReader(settings.broker, client_id="abacus-bench") as reader:
        parts = reader.partitions([topic])
        ends = true_log_ends(reader.consumer, reader.consumer.end_offsets(parts))
    return {tp.partition: end for tp, end in ends.items()}


def _wait_first_batch(proc: subprocess.Popen[bytes], env: dict[str, str], log: Path) -> float:
    """Until the worker's ingest service has handed its first batch over; returns then
    (perf_counter). It writes its attempts file then (`streams.attempts`), before the rest
    of the worker is ready: the clock must not start at readiness, when a good part of the
    topic is already stored, nor at the process start (imports, spawning the ingest
    processes). The broker cannot tell: it lists a member for a group nobody joined yet."""
    settings = AbacusSettings(home=Path(env["ABACUS_HOME"]))
    name = f"ingest-attempts-{env['ABACUS_APP_ID']}-ingest-{env['ABACUS_WEB__PORT']}.json"
    path = settings.state_dir / name
    while not path.exists():
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited {proc.returncode}; see {log}")
        time.sleep(0.005)
    return time.perf_counter()


def _wait_ready(proc: subprocess.Popen[bytes], web: str, log: Path) -> None:
    """Until the worker answers /readyz 200; a worker that exits fails the run."""
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited {proc.returncode}; see {log}")
        try:
            with urllib.request.urlopen(f"{web}/readyz", timeout=1) as r:  # noqa: S310 - our own web
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)


def _run_worker(
    settings: AbacusSettings,
    env: dict[str, str],
    ends: dict[int, int],
    log: Path,
    fresh: list[Event],
    batch: bool,
    fresh_s: float,
) -> dict[str, float]:
    """Throughput on the pre-loaded topic, then freshness at a steady rate, one worker."""
    web = f"http://127.0.0.1:{env['ABACUS_WEB__PORT']}"
    group = env["ABACUS_APP_ID"] + "-ingest"  # AbacusSettings.ingest_group
    proc = start_worker(env, log)
    try:
        started = _wait_first_batch(proc, env, log)
        _wait_committed(settings, group, ends)
        seconds = time.perf_counter() - started
        _wait_ready(proc, web, log)  # its /metrics: the rollups' gauge
        _wait_rollups(web)
        rollups_s = time.perf_counter() - started
        # The records an earlier worker's freshness phase sent are on the topic too (created
        # minutes ago): stored before the window opens, they do not count in it.
        _wait_committed(settings, group, _log_ends(settings))
        before = _histogram(f"{web}/metrics", "abacus_ingest_freshness_seconds")
        # Freshness at 50% of the rate just measured, for about ``fresh_s`` seconds.
        half_rate = 0.5 * sum(ends.values()) / seconds  # records/s
        records = _records(fresh, batch)[: max(50, int(half_rate * fresh_s))]
        fresh_ends = asyncio.run(_paced(settings, records, half_rate))
        _wait_committed(settings, group, fresh_ends)
        after = _histogram(f"{web}/metrics", "abacus_ingest_freshness_seconds")
        delta = [(le, a - b) for (le, a), (_, b) in zip(after, before, strict=True)]
        rss = _peak_rss_mb(proc.pid)
        pending = _metric(f"{web}/metrics", "abacus_pending_events_resolved")
    finally:
        # Nothing of this worker may run on into the next run (or outlive the benchmark).
        killed = stop_worker(proc, settings.drain_timeout_s + _STOP_GRACE_S)
    if killed:
        Console().print(f"[yellow]{env['ABACUS_APP_ID']}: killed {len(killed)} process(es)")
    return {
        "killed_processes": len(killed),
        "seconds": seconds,
        "rollups_seconds": rollups_s,  # until the rollups caught up (= seconds without them)
        # The sum of the peaks: an upper bound on what they held at any one time.
        "peak_rss_mb": sum(rss),
        "peak_rss_each_mb": rss,
        "fresh_p50_s": _quantile(delta, 0.5),
        "fresh_p99_s": _quantile(delta, 0.99),
        "fresh_records": delta[-1][1] if delta else 0,
        "fresh_records_per_s": half_rate,
        "pending_resolved": pending,
    }


def run_ingest_bench(
    *, events: int, batch: bool, out_dir: Path, fresh_s: float = 10.0
) -> dict[str, Any]:
    """Throughput against the baseline, then freshness at half the measured rate."""
    data = make_events(events)
    with (
        tempfile.TemporaryDirectory(prefix="abacus-bench-") as tmp,
        EmbeddedBroker(port=free_port()) as broker,
    ):
        root = Path(tmp)
        settings = AbacusSettings(
            home=root / "produce",
            broker={"bootstrap": broker.bootstrap},
            topics={"prefix": "bench."},
        )
        ensure_topics(settings)
        env = _env(
            root / "product",
            broker.bootstrap,
            {"ABACUS_APP_ID": "bench-worker", "ABACUS_WEB__PORT": str(free_port())},
        )
        _store_config(root / "product")
        _store_config(root / "facts-only")
        t = time.perf_counter()
        ends = asyncio.run(_produce(settings, data, batch))
        produce_s = time.perf_counter() - t
        records = sum(ends.values())
        loader = subprocess.run(  # noqa: S603
            [
                sys.executable,
                "-m",
                "abacus.bench.loader",
                json.dumps({"topic": settings.topics.name("events"), "ends": ends}),
            ],
            env=_env(root / "baseline", broker.bootstrap),
            capture_output=True,
            text=True,
            check=True,
            timeout=3600,
        )
        base = json.loads(loader.stdout.splitlines()[-1])
        base_rate = base["events"] / base["seconds"]
        fresh_events = make_events(max(2_000, int(base_rate * 0.5 * fresh_s)), first_seed=1_000)
        product = _run_worker(
            settings, env, ends, root / "worker.log", fresh_events, batch, fresh_s
        )
        # The same worker storing facts only (its own store and group, same topic).
        env = _env(
            root / "facts-only",
            broker.bootstrap,
            {
                "ABACUS_APP_ID": "bench-facts-only",
                "ABACUS_WEB__PORT": str(free_port()),
                "ABACUS_BENCH_SKIP_ROLLUPS": "true",
            },
        )
        facts_only = _run_worker(
            settings, env, ends, root / "facts-only.log", fresh_events, batch, fresh_s
        )
    rate = len(data) / product["seconds"]
    facts_rate = len(data) / facts_only["seconds"]
    rollup_rate = len(data) / product["rollups_seconds"]
    rows = [
        {
            "path": "baseline: aiokafka getmany + decode + insert",
            "events": base["events"],
            "records": records,
            "seconds": base["seconds"],
            "events_per_s": base_rate,
            "ratio": 1.0,
            "fresh_p50_s": "",
            "fresh_p99_s": "",
            "peak_rss_mb": "",
        },
        {
            "path": "abacus worker without rollups (facts only)",
            "events": len(data),
            "records": records,
            "seconds": facts_only["seconds"],
            "events_per_s": facts_rate,
            "ratio": facts_rate / base_rate,
            "fresh_p50_s": facts_only["fresh_p50_s"],
            "fresh_p99_s": facts_only["fresh_p99_s"],
            "peak_rss_mb": facts_only["peak_rss_mb"],
        },
        {
            "path": "abacus worker (validate, dead letters, facts, rollups)",
            "events": len(data),
            "records": records,
            "seconds": product["seconds"],
            "events_per_s": rate,
            "ratio": rate / base_rate,
            "fresh_p50_s": product["fresh_p50_s"],
            "fresh_p99_s": product["fresh_p99_s"],
            "peak_rss_mb": product["peak_rss_mb"],
        },
    ]
    mode = "batch" if batch else "single"
    extra = {
        "mode": mode,
        "produce_seconds": produce_s,
        "peak_rss_each_mb": product["peak_rss_each_mb"],  # worker, then ingest processes
        # What rollup maintenance costs ingest: events/s with rollups / without (target >= 0.9).
        "rollup_cost_ratio": rate / facts_rate,
        # Until the rollups had caught up too (the background rebuild of every late key).
        "rollups_complete_seconds": product["rollups_seconds"],
        "rollups_complete_ratio": rollup_rate / facts_rate,
        # Events stored pending (district unknown) and derived later, by both workers: 0
        # when the district was configured first, as it is here.
        "pending_resolved": product["pending_resolved"] + facts_only["pending_resolved"],
        # Processes of a worker still running after it was stopped, killed (0: none lingered).
        "worker_processes_killed": product["killed_processes"] + facts_only["killed_processes"],
        "freshness": {
            "records_per_s": product["fresh_records_per_s"],
            "records": product["fresh_records"],
        },
    }
    report(f"ingest-{mode}", rows, out_dir, extra)
    Console().print(
        f"rollup maintenance: {rate:,.0f} events/s with rollups, {facts_rate:,.0f} without;"
        f" ratio {rate / facts_rate:.2f} (target >= 0.90); rollups complete after"
        f" {product['rollups_seconds']:.1f} s ({rollup_rate:,.0f} events/s, ratio"
        f" {rollup_rate / facts_rate:.2f})"
    )
    return {"rows": rows}
