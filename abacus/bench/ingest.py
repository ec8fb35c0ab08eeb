"""`abacus bench ingest`: end-to-end events/s of the worker against the raw loader baseline.

The same records are pre-loaded on a fresh embedded broker, one copy per run: the loader
baseline (run again after the workers: its rate is events over the mean time of the two, so
a drift across the round counts on both sides), then three worker runs, each in its own
process with its own chDB and topics (no run reads what another wrote: a freshness phase's
records used to be on the topic the next worker read, and counted in its time). The
product's clock runs from the moment its ingest service hands its first batch over (before
the whole worker is ready) until its group has committed every offset (it commits only after
the batch's facts are stored, so committed = aggregates queryable); the baseline's from its
start until the last insert returns. What rollups cost ingest is the worker with rollup
maintenance against the same worker without it (`ABACUS_BENCH_SKIP_ROLLUPS`), run before AND
after it (`_RUNS`): what drifts across one benchmark's runs (load, warm caches) then counts
on both sides, and the two facts-only runs show how much it drifted. The generated school
year lies in the past, so every fact is late: each batch writes its rollup keys, and the
rollup service rebuilds them in the background while ingest runs. The clock then goes on
until the rollups have caught up (`abacus_rollups_behind` 0), reported as a second rate. The
district's config is in each worker's store before it starts (`configured_homes`), as in
production, where a district is configured before its students' events arrive. ``--rounds
N`` repeats the whole round (loader, workers, loader) N times on copies of its own; the rows
are medians of the rounds' own figures and ratios, peak RSS the highest round's. Each side's
CPU time (user + system of every process and thread: a worker's ingest processes and chDB's
threads, the loader's chDB threads) over its own timed window is reported per event, with
the cores it kept busy on average: on a small machine that, not the clock, says what bounds
a run. A probe pinned to each CPU times a fixed unit of work throughout
(`abacus.bench.host_speed`): each side's windows get the host's speed in them, and each
ratio a second figure, had both sides run at the same speed (a VM's CPUs change speed
from one second to the next; the ratio measured is still the one reported as the ratio).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from rich.console import Console

from abacus.bench.host_speed import HostSpeed, at_equal_speed, runs_ms
from abacus.bench.ingest_data import (
    RecordSource,
    configured_homes,
    encode_records,
    paced,
    produce_copies,
    school_years,
    take,
)
from abacus.bench.report import report
from abacus.bench.worker_process import start_worker, stop_worker
from abacus.embedded.broker import EmbeddedBroker, free_port
from abacus.kafka.topics import ensure_topics
from abacus.settings import AbacusSettings
from consumers.lag import LagReader

__all__ = ["next_poll_s", "run_ingest_bench"]

_STOP_GRACE_S = 60.0  # beyond the worker's drain timeout, before it is killed
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")  # the unit of /proc/<pid>/stat's CPU times


@dataclass(frozen=True)
class _Run:
    """One worker run: its name (home, topic prefix, app id), with rollup maintenance or
    not, and whether the rollups' catch-up and freshness are measured after throughput."""

    name: str
    rollups: bool
    freshness: bool


# Facts only before and after the worker with rollups (A-B-A): a drift across the runs
# counts on both sides of the ratio. The last run is there to bracket the rollups' run and
# stops at its last commit (no freshness phase): ~13 s more at the test's size.
_RUNS = (
    _Run("facts-only-1", rollups=False, freshness=True),
    _Run("product", rollups=True, freshness=True),
    _Run("facts-only-2", rollups=False, freshness=False),
)


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


def _family(pid: int) -> list[int]:
    """A process, then its children (a worker's ingest processes)."""
    proc = Path(f"/proc/{pid}")
    children = [
        int(child)
        for task in (proc / "task").iterdir()
        for child in (task / "children").read_text().split()
    ]
    return [pid, *children]


def _cpu_seconds(pid: int, *, kernel: bool = False) -> tuple[float, float]:
    """CPU time (user + system, every thread) so far of a process (a worker's: fetch, store,
    chDB's threads), and of its children together (its ingest processes); ``kernel``: the
    system part only (on a VM's disk, creating a part's files costs more there than rows)."""
    ticks = []
    for one in _family(pid):
        try:
            stat = Path(f"/proc/{one}/stat").read_text()
        except OSError:  # a child that exited meanwhile
            ticks.append(0)
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after the command's name
        user, system = int(fields[11]), int(fields[12])  # utime, stime (fields 14, 15)
        ticks.append(system if kernel else user + system)
    return ticks[0] / _CLOCK_TICKS, sum(ticks[1:]) / _CLOCK_TICKS


def _peak_rss_mb(pid: int) -> list[float]:
    """Peak RSS of a process, then of each of its children (the ingest processes)."""
    peaks = []
    for one in _family(pid):
        for line in Path(f"/proc/{one}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peaks.append(int(line.split()[1]) / 1024)
    return peaks


def _wait_committed(
    settings: AbacusSettings, group: str, ends: dict[int, int], topic: str | None = None
) -> None:
    """Return as soon as ``group`` has committed every end of ``topic`` (the events topic
    by default), over one connection, every `next_poll_s`: a read of the committed offsets
    costs this process ~0.6 ms of CPU and the broker some, taken from the worker measured
    (every 20 ms, this process alone used 0.08 of the two cores in a worker's window)."""
    topic = topic or settings.topics.name(settings.topics.events)
    total = sum(ends.values())
    started = time.perf_counter()
    done, seen_at = 0.0, 0.0  # the committed share of ``total``, and when it was first seen
    with LagReader(settings.broker, client_id="abacus-bench") as reader:
        while True:
            committed = {
                tp.partition: offset
                for tp, offset in reader.committed(group).items()
                if tp.topic == topic
            }
            if all(committed.get(p, 0) >= end for p, end in ends.items()):
                return
            now = time.perf_counter() - started
            share = sum(min(committed.get(p, 0), end) for p, end in ends.items()) / total
            if share > done:
                done, seen_at = share, now
            time.sleep(next_poll_s(now, done, seen_at))


_POLL_MIN_S = 0.02  # near the expected end and after it: the end is seen within 20 ms
_POLL_MAX_S = 0.2
_POLL_FIRST_S = 0.05  # until the first commit, when the rate is not known yet


def next_poll_s(now: float, done: float, seen_at: float) -> float:
    """Seconds until the committed offsets are read again, ``now`` seconds into a wait:
    an eighth of the time left until the end expected at the rate so far (``done`` of the
    records committed, first seen at ``seen_at``), between 20 ms and 0.2 s. An end earlier
    than expected by D is seen at most D/7 late; one later than expected, within 20 ms."""
    if done <= 0:
        return _POLL_FIRST_S
    expected_end = seen_at / done
    return min(_POLL_MAX_S, max(_POLL_MIN_S, (expected_end - now) / 8))


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
    fresh: RecordSource | None,
    fresh_s: float,
) -> dict[str, Any]:
    """Throughput on the run's pre-loaded topic; with ``fresh``, then the rollups' catch-up
    and freshness at a steady rate. The worker and all it started are gone on return."""
    group = env["ABACUS_APP_ID"] + "-ingest"  # AbacusSettings.ingest_group
    # What the runs before wrote is on disk before this one starts: the kernel writes it
    # back up to 30 s later, into another run's clock (ClickHouse creates ~13 files a part,
    # and on a VM's disk file creation slowed down several-fold while it did).
    os.sync()
    proc = start_worker(env, log)
    try:
        started = _wait_first_batch(proc, env, log)
        wall = time.time() - (time.perf_counter() - started)  # for the host's speed in it
        cpu, kernel = _cpu_seconds(proc.pid), _cpu_seconds(proc.pid, kernel=True)
        _wait_committed(settings, group, ends)
        seconds = time.perf_counter() - started
        # In the same window: the worker's process, then its ingest processes.
        each = [after - before for after, before in zip(_cpu_seconds(proc.pid), cpu, strict=True)]
        kernel_after = _cpu_seconds(proc.pid, kernel=True)
        result: dict[str, Any] = {
            "seconds": seconds,
            "cpu_seconds": sum(each),
            "cpu_seconds_each": each,
            "kernel_seconds": sum(kernel_after) - sum(kernel),
            "window": [wall, wall + seconds],
        }
        if fresh is not None:
            rate = sum(ends.values()) / result["seconds"]  # records/s
            result |= _after_throughput(settings, proc, env, log, started, rate, fresh, fresh_s)
        rss = _peak_rss_mb(proc.pid)
    finally:
        # Nothing of this worker may run on into the next run (or outlive the benchmark).
        killed = stop_worker(proc, settings.drain_timeout_s + _STOP_GRACE_S)
    if killed:
        Console().print(f"[yellow]{env['ABACUS_APP_ID']}: killed {len(killed)} process(es)")
    return result | {
        # The sum of the peaks: an upper bound on what they held at any one time.
        "peak_rss_mb": sum(rss),
        "peak_rss_each_mb": rss,
        "killed_processes": len(killed),
    }


def _after_throughput(
    settings: AbacusSettings,
    proc: subprocess.Popen[bytes],
    env: dict[str, str],
    log: Path,
    started: float,
    rate: float,
    fresh: RecordSource,
    fresh_s: float,
) -> dict[str, float]:
    """Until the rollups have caught up, then freshness at 50% of ``rate`` (records/s, just
    measured) for about ``fresh_s`` seconds (the run's topic holds only its own records)."""
    web = f"http://127.0.0.1:{env['ABACUS_WEB__PORT']}"
    _wait_ready(proc, web, log)  # its /metrics: the rollups' gauge
    _wait_rollups(web)
    rollups_s = time.perf_counter() - started
    before = _histogram(f"{web}/metrics", "abacus_ingest_freshness_seconds")
    half_rate = 0.5 * rate
    fresh_ends = asyncio.run(
        paced(settings, fresh.first(max(50, int(half_rate * fresh_s))), half_rate)
    )
    _wait_committed(settings, env["ABACUS_APP_ID"] + "-ingest", fresh_ends)
    after = _histogram(f"{web}/metrics", "abacus_ingest_freshness_seconds")
    delta = [(le, a - b) for (le, a), (_, b) in zip(after, before, strict=True)]
    return {
        "rollups_seconds": rollups_s,  # until the rollups caught up (= seconds without them)
        "fresh_p50_s": _quantile(delta, 0.5),
        "fresh_p99_s": _quantile(delta, 0.99),
        "fresh_records": delta[-1][1] if delta else 0,
        "fresh_records_per_s": half_rate,
        "pending_resolved": _metric(f"{web}/metrics", "abacus_pending_events_resolved"),
    }


def _settings(root: Path, bootstrap: str, run: str) -> AbacusSettings:
    """A run's settings as the benchmark sees them: its topics are prefixed with its name."""
    return AbacusSettings(
        home=root / run, broker={"bootstrap": bootstrap}, topics={"prefix": f"bench.{run}."}
    )


def run_ingest_bench(
    *, events: int, batch: bool, out_dir: Path, fresh_s: float = 10.0, rounds: int = 1
) -> dict[str, Any]:
    """Throughput against the baseline, then freshness at half the measured rate; ``rounds``
    times over (the loader, then the worker runs, then the loader again), medians reported."""
    years = school_years()
    data, spare = take(years, events)
    with (
        tempfile.TemporaryDirectory(prefix="abacus-bench-") as tmp,
        EmbeddedBroker(port=free_port()) as broker,
        HostSpeed() as host,
    ):
        root = Path(tmp)
        names = [_run_name(run, r, rounds) for r in range(rounds) for run in _RUNS]
        runs = {name: _settings(root, broker.bootstrap, name) for name in names}
        for settings in runs.values():
            ensure_topics(settings)
        configured_homes([root / name for name in runs])
        t = time.perf_counter()
        ends = dict(
            zip(
                runs,
                asyncio.run(produce_copies(list(runs.values()), encode_records(data, batch))),
                strict=True,
            )
        )
        produce_s = time.perf_counter() - t
        fresh: RecordSource | None = None
        measured = []
        for r in range(rounds):
            first = _run_name(_RUNS[0], r, rounds)
            # The loader reads the round's first copy (reading leaves it as it was).
            base = [_load(root, broker.bootstrap, runs[first], ends[first], host)]
            if fresh is None:
                base_rate = base[0]["events"] / base[0]["seconds"]
                # The rest of the last school year simulated first, then more if need be.
                fresh_events, _ = take(years, max(2_000, int(base_rate * 0.5 * fresh_s)), spare)
                del spare  # up to a school year's events, not needed any more
                fresh = RecordSource(fresh_events, batch)
            results = {}
            for run in _RUNS:
                name = _run_name(run, r, rounds)
                env = _env(
                    root / name,
                    broker.bootstrap,
                    {
                        "ABACUS_APP_ID": f"bench-{name}",
                        "ABACUS_WEB__PORT": str(free_port()),
                        "ABACUS_TOPICS__PREFIX": runs[name].topics.prefix,
                        "ABACUS_BENCH_SKIP_ROLLUPS": str(not run.rollups).lower(),
                    },
                )
                results[run.name] = _run_worker(
                    runs[name],
                    env,
                    ends[name],
                    root / f"{name}.log",
                    fresh if run.freshness else None,
                    fresh_s,
                )
                results[run.name]["probe_ms"] = host.window_ms(results[run.name]["window"])
            # Again on the last run's copy: no freshness phase wrote after it.
            last = _run_name(_RUNS[-1], r, rounds)
            base.append(_load(root, broker.bootstrap, runs[last], ends[last], host))
            measured.append(_round(results, len(data), base))
        records_n = sum(ends[_run_name(_RUNS[0], 0, rounds)].values())
    return _report(measured, len(data), records_n, batch, out_dir, produce_s)


def _run_name(run: _Run, round_: int, rounds: int) -> str:
    """A run's name (its home, topic prefix and app id): the round's number in front when
    there is more than one."""
    return run.name if rounds == 1 else f"r{round_ + 1}-{run.name}"


def _load(
    root: Path, bootstrap: str, settings: AbacusSettings, ends: dict[int, int], host: HostSpeed
) -> Any:
    """The loader baseline, in a process of its own, on a run's copy of the records; with
    the host's speed in its window (``probe_ms``)."""
    os.sync()  # see _run_worker
    loader = subprocess.run(  # noqa: S603
        [
            sys.executable,
            "-m",
            "abacus.bench.loader",
            json.dumps({"topic": settings.topics.name("events"), "ends": ends}),
        ],
        env=_env(root / "baseline", bootstrap),
        capture_output=True,
        text=True,
        check=True,
        timeout=3600,
    )
    result = json.loads(loader.stdout.splitlines()[-1])
    return result | {"probe_ms": host.window_ms(result["window"])}


def _round(
    results: dict[str, dict[str, Any]], events: int, base: list[dict[str, Any]]
) -> dict[str, Any]:
    """One round's figures: the loader before and after, each worker run, their ratios."""
    product = results["product"]
    facts = [results[run.name] for run in _RUNS if not run.rollups]
    # Each side's time is the mean of its runs before and after: events / mean seconds.
    base_rate = sum(b["events"] for b in base) / sum(b["seconds"] for b in base)
    facts_rate = events / statistics.fmean(r["seconds"] for r in facts)
    rate = events / product["seconds"]
    rollup_rate = events / product["rollups_seconds"]
    # CPU time of each side per event, and the cores it kept busy on average: what bounds
    # a run on a small machine (the worker spreads over its ingest processes, the loader
    # runs one Python thread and chDB's).
    base_cpu = sum(b["cpu_seconds"] for b in base)
    facts_cpu = sum(r["cpu_seconds"] for r in facts)
    base_events = sum(b["events"] for b in base)
    # How fast the host's CPUs ran in each side's windows (abacus/bench/host_speed.py).
    base_ms = runs_ms((b.get("probe_ms"), b["seconds"]) for b in base)
    facts_ms = runs_ms((r.get("probe_ms"), r["seconds"]) for r in facts)
    product_ms = runs_ms([(product.get("probe_ms"), product["seconds"])])
    return {
        "baseline_events_per_s": base_rate,
        # Each load by itself (before and after the workers): the events it read, its time.
        "baseline_runs": [b | {"events_per_s": b["events"] / b["seconds"]} for b in base],
        "facts_only_events_per_s": facts_rate,
        # Each facts-only run by itself: how far apart they are is the drift across runs.
        "facts_only_runs": [
            {"run": run.name, "seconds": results[run.name]["seconds"]}
            | {"events_per_s": events / results[run.name]["seconds"]}
            | {"window": results[run.name]["window"]}
            for run in _RUNS
            if not run.rollups
        ],
        "product_events_per_s": rate,
        # The product run's window (epoch seconds): to line it up with what else was measured.
        "product_window": product["window"],
        "baseline_cpu_us_per_event": base_cpu / base_events * 1e6,
        "baseline_cores": base_cpu / sum(b["seconds"] for b in base),
        "facts_only_cpu_us_per_event": facts_cpu / (events * len(facts)) * 1e6,
        "facts_only_cores": facts_cpu / sum(r["seconds"] for r in facts),
        "product_cpu_us_per_event": product["cpu_seconds"] / events * 1e6,
        "product_cores": product["cpu_seconds"] / product["seconds"],
        # Of that CPU time, the kernel's (system time): files, pipes, sockets.
        "baseline_kernel_us_per_event": sum(b["kernel_seconds"] for b in base) / base_events * 1e6,
        "facts_only_kernel_us_per_event": sum(r["kernel_seconds"] for r in facts)
        / (events * len(facts))
        * 1e6,
        "product_kernel_us_per_event": product["kernel_seconds"] / events * 1e6,
        # The worker's own process (fetch, store, chDB), then its ingest processes.
        "facts_only_cpu_us_per_event_each": [
            sum(r["cpu_seconds_each"][i] for r in facts) / (events * len(facts)) * 1e6
            for i in range(2)
        ],
        "product_cpu_us_per_event_each": [c / events * 1e6 for c in product["cpu_seconds_each"]],
        "facts_only_ratio": facts_rate / base_rate,
        "product_ratio": rate / base_rate,
        # The host's speed in each side's windows (CPU ms of the probes' unit of work:
        # lower is faster), and the ratios had both sides run at the same speed.
        "baseline_probe_ms": base_ms,
        "facts_only_probe_ms": facts_ms,
        "product_probe_ms": product_ms,
        "facts_only_ratio_at_equal_speed": at_equal_speed(
            facts_rate / base_rate, facts_ms, base_ms
        ),
        "product_ratio_at_equal_speed": at_equal_speed(rate / base_rate, product_ms, base_ms),
        # What rollup maintenance costs ingest: events/s with rollups / without (target >= 0.9).
        "rollup_cost_ratio": rate / facts_rate,
        # Until the rollups had caught up too (the background rebuild of every late key).
        "rollups_complete_seconds": product["rollups_seconds"],
        "rollups_complete_ratio": rollup_rate / facts_rate,
        "facts_only_fresh_p50_s": facts[0]["fresh_p50_s"],
        "facts_only_fresh_p99_s": facts[0]["fresh_p99_s"],
        "facts_only_peak_rss_mb": facts[0]["peak_rss_mb"],
        "fresh_p50_s": product["fresh_p50_s"],
        "fresh_p99_s": product["fresh_p99_s"],
        "peak_rss_mb": product["peak_rss_mb"],
        "peak_rss_each_mb": product["peak_rss_each_mb"],  # worker, then ingest processes
        # Events stored pending (district unknown) and derived later, by the workers whose
        # /metrics were read: 0 when the district was configured first, as it is here.
        "pending_resolved": sum(r.get("pending_resolved", 0) for r in results.values()),
        # Processes of a worker still running after it was stopped, killed (0: none lingered).
        "worker_processes_killed": sum(r["killed_processes"] for r in results.values()),
        "freshness": {
            "records_per_s": product["fresh_records_per_s"],
            "records": product["fresh_records"],
        },
    }


def _report(
    rounds: list[dict[str, Any]],
    events: int,
    records_n: int,
    batch: bool,
    out_dir: Path,
    produce_s: float,
) -> dict[str, Any]:
    """Rows (medians over the rounds) and each round's figures, written as JSON and printed."""

    def med(key: str) -> Any:  # a figure's median over the rounds (itself with one)
        return statistics.median(r[key] for r in rounds)

    def med_known(key: str) -> float | None:  # over the rounds that have the figure
        known = [r[key] for r in rounds if r.get(key) is not None]
        return statistics.median(known) if known else None

    base_rate = med("baseline_events_per_s")
    facts_rate = med("facts_only_events_per_s")
    rate = med("product_events_per_s")
    of = f" (median of {len(rounds)} rounds)" if len(rounds) > 1 else ""

    def row(path: str, side: str, per_s: float, ratio: float, **more: Any) -> dict[str, Any]:
        return {
            "path": path + of,
            "events": events,
            "records": records_n,
            "seconds": events / per_s,
            "events_per_s": per_s,
            "ratio": ratio,
            # CPU time (every process and thread of the side) per event; cores busy.
            "cpu_us_per_event": med(f"{side}_cpu_us_per_event"),
            "cores": med(f"{side}_cores"),
            "kernel_us_per_event": med(f"{side}_kernel_us_per_event"),
            # The host's speed in the side's windows, and the ratio at equal host speed.
            "probe_ms": med_known(f"{side}_probe_ms"),
            "ratio_at_equal_speed": more.get("at_equal_speed", 1.0),
            "fresh_p50_s": more.get("p50", ""),
            "fresh_p99_s": more.get("p99", ""),
            "peak_rss_mb": more.get("rss", ""),
        }

    rows = [
        row(
            "baseline: aiokafka getmany + decode + insert (before and after)",
            "baseline",
            base_rate,
            1.0,
        ),
        row(
            "abacus worker without rollups (facts only, runs before and after)",
            "facts_only",
            facts_rate,
            med("facts_only_ratio"),
            at_equal_speed=med_known("facts_only_ratio_at_equal_speed"),
            p50=med("facts_only_fresh_p50_s"),
            p99=med("facts_only_fresh_p99_s"),
            rss=max(r["facts_only_peak_rss_mb"] for r in rounds),
        ),
        row(
            "abacus worker (validate, dead letters, facts, rollups)",
            "product",
            rate,
            med("product_ratio"),
            at_equal_speed=med_known("product_ratio_at_equal_speed"),
            p50=med("fresh_p50_s"),
            p99=med("fresh_p99_s"),
            rss=max(r["peak_rss_mb"] for r in rounds),
        ),
    ]
    mode = "batch" if batch else "single"
    last = rounds[-1]
    extra = {
        "mode": mode,
        "produce_seconds": produce_s,  # the copies of every run
        "run_order": [run.name for run in _RUNS],
        "rounds": rounds,
        # The medians of the rounds (a round's own figures with one round).
        "rollup_cost_ratio": med("rollup_cost_ratio"),
        "rollups_complete_seconds": med("rollups_complete_seconds"),
        "rollups_complete_ratio": med("rollups_complete_ratio"),
        # The highest of the rounds.
        "peak_rss_each_mb": max((r["peak_rss_each_mb"] for r in rounds), key=sum),
        "pending_resolved": sum(r["pending_resolved"] for r in rounds),
        "worker_processes_killed": sum(r["worker_processes_killed"] for r in rounds),
        "facts_only_runs": last["facts_only_runs"],
        "freshness": last["freshness"],
    }
    report(f"ingest-{mode}", rows, out_dir, extra)
    console = Console()
    for n, r in enumerate(rounds, 1):
        each = ", ".join(f"{f['events_per_s']:,.0f}" for f in r["facts_only_runs"])
        loads = ", ".join(f"{b['events_per_s']:,.0f}" for b in r["baseline_runs"])
        own, ingest = r["product_cpu_us_per_event_each"]
        console.print(
            f"round {n}: loader {r['baseline_events_per_s']:,.0f} events/s (before and after:"
            f" {loads}); facts only {r['facts_only_events_per_s']:,.0f} ({each}); with rollups"
            f" {r['product_events_per_s']:,.0f}, ratio to the loader {r['product_ratio']:.2f};"
            f" rollup cost ratio {r['rollup_cost_ratio']:.2f}; rollups complete after"
            f" {r['rollups_complete_seconds']:.1f} s; peak RSS worker"
            f" {r['peak_rss_each_mb'][0]:,.0f} MB; CPU per event loader"
            f" {r['baseline_cpu_us_per_event']:.1f} µs (kernel"
            f" {r['baseline_kernel_us_per_event']:.1f}) on {r['baseline_cores']:.2f} cores, with"
            f" rollups {r['product_cpu_us_per_event']:.1f} µs (kernel"
            f" {r['product_kernel_us_per_event']:.1f}; worker process {own:.1f}, ingest"
            f" processes {ingest:.1f}) on {r['product_cores']:.2f} cores; host probe"
            f" {_ms(r['baseline_probe_ms'])} loader, {_ms(r['product_probe_ms'])} with rollups"
            f" (CPU ms a unit, lower is faster): ratio at equal host speed"
            f" {_ratio(r['product_ratio_at_equal_speed'])}"
        )
    console.print(
        f"rollup maintenance: {rate:,.0f} events/s with rollups, {facts_rate:,.0f} without;"
        f" ratio {extra['rollup_cost_ratio']:.2f} (target >= 0.90); with rollups to the loader"
        f" {rows[2]['ratio']:.2f} (target >= 0.90); rollups complete after"
        f" {extra['rollups_complete_seconds']:.1f} s ({extra['rollups_complete_ratio']:.2f});"
        f" at equal host speed, to the loader {_ratio(rows[2]['ratio_at_equal_speed'])}"
        + (f"; medians of {len(rounds)} rounds" if len(rounds) > 1 else "")
    )
    return {"rows": rows}


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _ratio(value: float | None) -> str:
    return "n/a (no probe in a window)" if value is None else f"{value:.2f}"
