"""`abacus bench portal`: 100 signed-in users browsing the portal and polling their exports'
status against a worker that ingests at half its measured rate; `/healthz` answered by
the same worker in the same run is the baseline.

Steps, on a fresh embedded broker: events are pre-loaded and the worker's ingest rate is
measured on them (as `abacus bench ingest` does); a roster of ``users`` teachers with
passwords is imported; every user signs in (sign-in latency: argon2id verify); a few
request an export; then, for ``seconds``, a child process produces events at half the
measured rate while every user loops: think 0.5-1.5 s, then poll their exports' rows,
open a page, or ask `/healthz`. Printed: page and poll p50/p95, `/healthz` p50/p95 and
the ratio, ingest freshness p50/p99 over the same seconds (the worker's histogram).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from abacus.bench.ingest import _env, _histogram, _quantile, _wait_committed, _wait_ready
from abacus.bench.ingest_data import (
    DISTRICT,
    TZ,
    encode_records,
    make_events,
    paced,
    produce,
)
from abacus.bench.report import report
from abacus.embedded.broker import EmbeddedBroker, free_port
from abacus.kafka.topics import ensure_topics
from abacus.roster.importer import import_roster
from abacus.settings import AbacusSettings

__all__ = ["run_portal_bench"]

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_PASSWORD = "Bench-Password-{n:03d}"  # noqa: S105 - the made-up bench roster's


def _roster(folder: Path, users: int, students_per_user: int) -> None:
    """A district of ``users`` teachers (each with a password) and an admin; students are
    the simulated ones of `make_events` (ids B<seed>-<nnnn>)."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["Employee_ID,Username,Email,Password,First_Name,Last_Name,Building_Names,User_Type"]
    for n in range(users):
        lines.append(f"T{n:03d},teacher{n:03d},,{_PASSWORD.format(n=n)},Teacher,N{n:03d},School,1")
    (folder / "1_users.csv").write_text("\n".join(lines) + "\n")
    head = "StudentID,Date_of_Birth,Last,First,Grade,Building_Name,Gender,SPED,Ethnicity,Race,ELL"
    students, links = [head], ["EmployeeID,StudentID"]
    for n in range(users * students_per_user):
        sid = f"B{n // 200}-{n % 200:04d}"
        students.append(f"{sid},01/01/2015,Last,First,3,School,F,N,Hispanic/Latino,White,N")
        links.append(f"T{n // students_per_user:03d},{sid}")
    (folder / "2_students.csv").write_text("\n".join(students) + "\n")
    (folder / "3_teacher_students.csv").write_text("\n".join(links) + "\n")
    (folder / "district.toml").write_text(
        f'name = "Bench District"\ntimezone = "{TZ}"\nschool_year_start = "08-15"\n'
    )


def _produce_paced(servers: str, rate: float, seconds: float, per_record: float, go: Any) -> None:
    """Child process (off the clients' GIL): SDK batch records at ``rate`` records/s for
    ``seconds``, once ``go`` is set."""
    settings = AbacusSettings(broker={"bootstrap": servers}, topics={"prefix": "bench."})
    wanted = max(50, int(rate * seconds))
    records = encode_records(
        make_events(int(wanted * per_record * 1.2) + 2_000, first_seed=5_000), True
    )
    go.wait()
    asyncio.run(paced(settings, records[:wanted], rate))


@dataclass
class _Timings:
    page: list[float] = field(default_factory=list)
    poll: list[float] = field(default_factory=list)
    health: list[float] = field(default_factory=list)
    errors: int = 0


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _sign_in(session: aiohttp.ClientSession, web: str, n: int) -> float:
    async with session.get(f"{web}/portal/sign-in") as resp:
        token = _CSRF.search(await resp.text())[1]  # type: ignore[index]
    form = {"csrf": token, "district": DISTRICT, "username": f"teacher{n:03d}",
            "password": _PASSWORD.format(n=n), "next": "/portal/export"}  # fmt: skip
    started = time.perf_counter()
    async with session.post(f"{web}/portal/sign-in", data=form, allow_redirects=False) as resp:
        if resp.status != 303:
            raise RuntimeError(f"sign-in of teacher{n:03d} answered {resp.status}")
    return time.perf_counter() - started


async def _request_export(session: aiohttp.ClientSession, web: str) -> None:
    async with session.get(f"{web}/portal/export") as resp:
        token = _CSRF.search(await resp.text())[1]  # type: ignore[index]
    form = {"csrf": token, "product": "both", "range": "ytd"}
    async with session.post(f"{web}/portal/export", data=form, allow_redirects=False) as resp:
        if resp.status != 303:
            raise RuntimeError(f"export request answered {resp.status}")


async def _browse(
    session: aiohttp.ClientSession, web: str, until: float, timings: _Timings, seed: int
) -> None:
    rng = random.Random(seed)  # noqa: S311 - think times, not secrets
    pages = ["/portal/my-exports", "/portal/export", "/portal/patterns"]
    while time.perf_counter() < until:
        await asyncio.sleep(rng.uniform(0.5, 1.5))
        pick = rng.random()
        if pick < 0.4:
            path, bucket = "/portal/my-exports/rows", timings.poll
        elif pick < 0.8:
            path, bucket = rng.choice(pages), timings.page
        else:
            path, bucket = "/healthz", timings.health
        started = time.perf_counter()
        try:
            async with session.get(f"{web}{path}", allow_redirects=False) as resp:
                await resp.read()
                ok = resp.status == 200
        except aiohttp.ClientError:
            ok = False
        if ok:
            bucket.append(time.perf_counter() - started)
        else:
            timings.errors += 1


async def _users(web: str, users: int, exporters: int, seconds: float, go: Any) -> dict[str, Any]:
    connector = aiohttp.TCPConnector(limit=0)
    sessions = [
        aiohttp.ClientSession(connector=connector, connector_owner=False,
                              cookie_jar=aiohttp.CookieJar(unsafe=True))
        for _ in range(users)
    ]  # fmt: skip
    try:
        # One at a time: each figure is one sign-in, not a queue of them.
        gate = asyncio.Semaphore(1)

        async def one(n: int, session: aiohttp.ClientSession) -> float:
            async with gate:
                return await _sign_in(session, web, n)

        sign_ins = await asyncio.gather(*(one(n, s) for n, s in enumerate(sessions)))
        for s in sessions[:exporters]:
            await _request_export(s, web)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            async with sessions[0].get(f"{web}/portal/my-exports/rows") as resp:
                if "Completed" in await resp.text():
                    break
            await asyncio.sleep(0.5)
        timings = _Timings()
        go.set()  # the paced producer starts; give it a second to reach its rate
        await asyncio.sleep(1.0)
        until = time.perf_counter() + seconds
        await asyncio.gather(
            *(_browse(s, web, until, timings, seed) for seed, s in enumerate(sessions))
        )
    finally:
        for s in sessions:
            await s.close()
        await connector.close()
    return {"sign_ins": list(sign_ins), "timings": timings}


def run_portal_bench(
    *, users: int, events: int, seconds: float, out_dir: Path, exporters: int = 10
) -> dict[str, Any]:
    """The run described in the module docstring; returns and reports its figures."""
    data = make_events(events)
    with (
        tempfile.TemporaryDirectory(prefix="abacus-bench-portal-") as tmp,
        EmbeddedBroker(port=free_port()) as broker,
    ):
        root = Path(tmp)
        settings = AbacusSettings(
            home=root / "produce", broker={"bootstrap": broker.bootstrap},
            topics={"prefix": "bench."},
        )  # fmt: skip
        ensure_topics(settings)
        ends = asyncio.run(produce(settings, data, True))
        port = free_port()
        env = _env(root / "worker", broker.bootstrap,
                   {"ABACUS_APP_ID": "bench-portal", "ABACUS_WEB__PORT": str(port)})  # fmt: skip
        web = f"http://127.0.0.1:{port}"
        log = root / "worker.log"
        proc = subprocess.Popen(
            [sys.executable, "-m", "abacus", "worker"],
            env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            _wait_ready(proc, web, log)
            started = time.perf_counter()
            _wait_committed(settings, "bench-portal-ingest", ends)
            rate = sum(ends.values()) / (time.perf_counter() - started)  # records/s
            _roster(root / "roster", users, students_per_user=20)
            import_roster(settings, root / "roster", DISTRICT)
            time.sleep(3)  # the worker's roster agent stores the accounts
            mp = multiprocessing.get_context("spawn")
            go = mp.Event()
            per_record = len(data) / sum(ends.values())
            producer = mp.Process(
                target=_produce_paced,
                args=(broker.bootstrap, rate / 2, seconds + 2, per_record, go),
            )
            producer.start()
            before = _histogram(f"{web}/metrics", "abacus_ingest_freshness_seconds")
            load = asyncio.run(_users(web, users, exporters, seconds, go))
            producer.join(timeout=300)
            time.sleep(2)  # the last paced records are stored
            after = _histogram(f"{web}/metrics", "abacus_ingest_freshness_seconds")
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    delta = [(le, a - b) for (le, a), (_, b) in zip(after, before, strict=True)]
    t: _Timings = load["timings"]
    health_p95 = _pct(t.health, 0.95)
    rows = [
        {"what": name, "requests": len(values), "p50_ms": _pct(values, 0.5) * 1000,
         "p95_ms": _pct(values, 0.95) * 1000,
         "p95_vs_healthz": _pct(values, 0.95) / health_p95 if health_p95 else float("nan")}
        for name, values in (
            ("/healthz (baseline)", t.health), ("portal pages", t.page),
            ("status polls", t.poll), ("pages + polls", t.page + t.poll),
            ("sign-in (argon2id)", load["sign_ins"]),
        )
    ]  # fmt: skip
    extra = {
        "users": users,
        "seconds": seconds,
        "errors": t.errors,
        "ingest_rate_records_per_s": rate,
        "events_per_record": len(data) / sum(ends.values()),
        "paced_records_per_s": rate / 2,
        "freshness_p50_s": _quantile(delta, 0.5),
        "freshness_p99_s": _quantile(delta, 0.99),
        "freshness_records": delta[-1][1] if delta else 0,
    }
    report("portal", rows, out_dir, extra)
    print(
        f"ingest measured {rate:,.0f} records/s, paced at {rate / 2:,.0f}/s during the load; "
        f"freshness p50 {extra['freshness_p50_s']:.2f} s, p99 {extra['freshness_p99_s']:.2f} s "
        f"over {extra['freshness_records']:,.0f} records; {t.errors} failed request(s)"
    )
    return {"rows": rows, **extra}
