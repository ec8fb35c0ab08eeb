"""`abacus bench ingest`: end-to-end events/s of the worker against the raw loader baseline.

Both read the same pre-loaded topic on a fresh embedded broker, each in its own process
with its own chDB. The product's clock runs from worker readiness until its group has
committed every offset (it commits only after the batch is stored, so committed =
aggregates queryable); the baseline's from its start until the last insert returns.
"""

from __future__ import annotations

import asyncio
import json
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

from abacus.bench.report import report
from abacus.district import DistrictConfig
from abacus.embedded.broker import EmbeddedBroker, free_port
from abacus.events.codec import Event, encode_batch, encode_event
from abacus.roster.records import config_value
from abacus.settings import AbacusSettings
from abacus.simulator import SimStudent, SimulationConfig, simulate
from abacus.topics import ensure_topics
from consumers.lag import read_lag

__all__ = ["make_events", "run_ingest_bench"]

DISTRICT = "bench-district"
TZ = "America/Chicago"
_GRADES = ("PK", "K", "1", "2", "3", "4", "5", "6", "7", "8")


def make_events(n: int) -> list[Event]:
    """At least ``n`` realistic events (a school year's worth per 200 students), cut to n."""
    out: list[Event] = []
    seed = 0
    while len(out) < n:
        students = [SimStudent(f"B{seed}-{i:04d}", _GRADES[i % len(_GRADES)]) for i in range(200)]
        out += simulate(
            students, SimulationConfig(DISTRICT, TZ, date(2025, 8, 18), date(2026, 6, 5), seed=seed)
        )
        seed += 1
    return out[:n]


async def _produce(settings: AbacusSettings, events: list[Event], batch: bool) -> dict[int, int]:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.broker.servers, linger_ms=20, max_batch_size=1 << 20, acks="all"
    )
    await producer.start()
    topics = settings.topics
    config = DistrictConfig(
        district_id=DISTRICT, name="Bench", timezone=TZ, school_year_start="08-15"
    )
    await producer.send_and_wait(
        topics.name(topics.district_config),
        key=DISTRICT.encode(),
        value=config_value(config, "bench", int(time.time() * 1000)),
    )
    futures = []
    topic = topics.name(topics.events)
    if batch:
        by_student: dict[str, list[Event]] = {}
        for e in events:
            by_student.setdefault(e["student_id"], []).append(e)
        for sid, items in by_student.items():
            for i in range(0, len(items), 50):
                futures.append(
                    await producer.send(
                        topic, key=sid.encode(), value=encode_batch(items[i : i + 50])
                    )
                )
    else:
        for e in events:
            futures.append(
                await producer.send(topic, key=e["student_id"].encode(), value=encode_event(e))
            )
    ends: dict[int, int] = {}
    for meta in await asyncio.gather(*futures):
        ends[meta.partition] = max(ends.get(meta.partition, 0), meta.offset + 1)
    await producer.stop()
    return ends


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


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _run_worker(
    settings: AbacusSettings, env: dict[str, str], ends: dict[int, int], log: Path
) -> dict[str, float]:
    web = env["ABACUS_WEB__PORT"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "abacus", "worker"],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited {proc.returncode}; see {log}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{web}/readyz", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            time.sleep(0.05)
        started = time.perf_counter()
        topic = settings.topics.name(settings.topics.events)
        group = env["ABACUS_APP_ID"] + "-ingest"  # AbacusSettings.ingest_group
        while True:
            committed = {
                r.partition: r.committed or 0
                for r in read_lag(settings.broker.servers, group, [topic])
                if r.topic == topic
            }
            if all(committed.get(p, 0) >= end for p, end in ends.items()):
                break
            time.sleep(0.2)
        seconds = time.perf_counter() - started
        rss = _peak_rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    return {"seconds": seconds, "peak_rss_mb": rss}


def run_ingest_bench(*, events: int, batch: bool, out_dir: Path) -> dict[str, Any]:
    data = make_events(events)
    with (
        tempfile.TemporaryDirectory(prefix="abacus-bench-") as tmp,
        EmbeddedBroker(port=free_port()) as broker,
    ):
        root = Path(tmp)
        base_env = _env(root / "produce", broker.bootstrap)
        settings = AbacusSettings(
            home=root / "produce",
            broker={"bootstrap": broker.bootstrap},
            topics={"prefix": "bench."},
        )
        ensure_topics(settings)
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
        env = _env(
            root / "product",
            broker.bootstrap,
            {"ABACUS_APP_ID": "bench-worker", "ABACUS_WEB__PORT": str(free_port())},
        )
        product = _run_worker(settings, env, ends, root / "worker.log")
        del base_env
    base_rate = base["events"] / base["seconds"]
    rate = len(data) / product["seconds"]
    rows = [
        {
            "path": "baseline: aiokafka getmany + decode + insert",
            "events": base["events"],
            "records": records,
            "seconds": base["seconds"],
            "events_per_s": base_rate,
            "ratio": 1.0,
            "peak_rss_mb": "",
        },
        {
            "path": "abacus worker (validate, dead letters, facts)",
            "events": len(data),
            "records": records,
            "seconds": product["seconds"],
            "events_per_s": rate,
            "ratio": rate / base_rate,
            "peak_rss_mb": product["peak_rss_mb"],
        },
    ]
    mode = "batch" if batch else "single"
    report(f"ingest-{mode}", rows, out_dir, {"mode": mode, "produce_seconds": produce_s})
    return {"rows": rows}
