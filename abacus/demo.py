"""`abacus demo`: the example district, a simulated school year, and a YTD export.

Uses a running stack when one answers on the configured ports (waiting for one that is
still starting), else starts `abacus up` as a child process for the demo's duration.
"""

from __future__ import annotations

import csv
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from abacus.client import EventProducer
from abacus.district import load_district_config
from abacus.errors import StackError
from abacus.kafka.export_requests import new_request_id, send_request, wait_status
from abacus.roster.importer import import_roster
from abacus.roster.validation import read_roster_dir, validate_roster
from abacus.settings import AbacusSettings
from abacus.simulator import SimStudent, SimulationConfig, simulate
from consumers.lag import read_lag

__all__ = ["EXAMPLE_DISTRICT", "run_demo"]

EXAMPLE_DISTRICT = Path(__file__).resolve().parents[1] / "examples" / "district"
DEMO_REQUESTER = "0401"  # the example district's district-level user
# The example's district admin (examples/district/1_users.csv): the one example account with
# a password, so the portal can be tried without mail.
PORTAL_ACCOUNT = ("aquill", "Example-Only-1")


def _ready(settings: AbacusSettings) -> bool:
    try:
        url = f"http://{settings.web.host}:{settings.web.port}/readyz"
        with urllib.request.urlopen(url, timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def _listening(settings: AbacusSettings) -> bool:
    """Something already holds the web port: a stack that is still starting."""
    try:
        with socket.create_connection((settings.web.host, settings.web.port), timeout=1):
            return True
    except OSError:
        return False


def _wait(
    what: str, check: Callable[[], bool], timeout: float, proc: subprocess.Popen[bytes] | None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise StackError(f"the stack exited ({proc.returncode}) while waiting for {what}")
        if check():
            return
        time.sleep(0.5)
    raise StackError(f"timed out waiting for {what}")


def run_demo(settings: AbacusSettings, say: Callable[[str], None] = print) -> Path:
    """Run the demo end to end; returns the CSV path."""
    proc = None
    if not _ready(settings) and _listening(settings):
        say("waiting for the running stack to be ready ...")
    elif not _ready(settings):
        say("starting the stack (abacus up) ...")
        log = settings.log_dir / "demo-stack.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        proc = subprocess.Popen(
            [sys.executable, "-m", "abacus", "up"],
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            env=dict(os.environ),
        )
    try:
        try:
            _wait("the stack to be ready", lambda: _ready(settings), 120, proc)
        except StackError as exc:
            raise StackError(f"{exc}: {_last_line(settings.log_dir / 'demo-stack.log')}") from exc
        return _demo(settings, say, proc)
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)


def _demo(
    settings: AbacusSettings, say: Callable[[str], None], proc: subprocess.Popen[bytes] | None
) -> Path:
    config = load_district_config(EXAMPLE_DISTRICT / "district.toml")
    district = config.district_id or "maple-valley"
    started = time.perf_counter()
    result = import_roster(settings, EXAMPLE_DISTRICT, district)
    say(f"roster: {district} imported ({result.rejected} row(s) rejected)")
    for note in result.notes:  # e.g. students deleted under a privacy request, left out
        say(f"roster: {note}")
    roster = validate_roster(read_roster_dir(EXAMPLE_DISTRICT))
    students = [SimStudent(s.student_id, s.grade) for s in roster.students]
    today = datetime.now(UTC).astimezone(ZoneInfo(config.timezone)).date()
    yesterday = today - timedelta(days=1)
    year_start = config.school_year_start_for(yesterday)
    events = simulate(
        students,
        SimulationConfig(
            district, config.timezone, year_start, yesterday, duplicate_share=0.02, late_share=0.02
        ),
    )
    with EventProducer(settings) as producer:
        records = producer.send_batches(events, max_batch=50)
        ends = dict(producer.ends)
    say(f"events: {len(events)} sent in {records} batch record(s), {year_start} to {yesterday}")
    topic = settings.topics.name(settings.topics.events)

    def consumed() -> bool:
        lag = {
            r.partition: r.committed or 0
            for r in read_lag(settings.broker, settings.ingest_group, [topic])
            if r.topic == topic
        }
        return all(lag.get(p, 0) >= end for p, end in ends.items())

    _wait("the worker to consume the events", consumed, 600, proc)
    say(f"ingested in {time.perf_counter() - started:.1f}s; requesting a YTD export")
    request_id = new_request_id()
    send_request(
        settings,
        {
            "request_id": request_id,
            "district_id": district,
            "requester": DEMO_REQUESTER,
            "product": "both",
            "range": "ytd",
        },
    )
    status = wait_status(settings, request_id, 300, district_id=district, requester=DEMO_REQUESTER)
    if status["status"] != "completed":
        raise StackError(f"demo export failed: {status.get('reason')}")
    path = Path(status["path"])
    with path.open(encoding="utf-8", newline="") as fh:
        environments = Counter(row[9] for row in list(csv.reader(fh))[1:])
    mix = ", ".join(f"{n} {k}" for k, n in sorted(environments.items()))
    say("")
    say(f"export:   {path}")
    say(f"manifest: {status['manifest']}")
    say(
        f"rows: {status['rows']} students ({mix}), {status['bytes']} bytes, "
        f"sha256 {status['sha256'][:16]}…, generated in {status['seconds']}s"
    )
    say(f"download link (signed, expiring): {status['link']}")
    name, password = PORTAL_ACCOUNT
    say(
        f"portal (while the stack runs): {settings.web.base_url}/portal/ - sign in as "
        f"{name} / {password}, the example's district admin"
    )
    return path


def _last_line(log: Path) -> str:
    """The last line `abacus up` wrote (why it stopped), or a pointer to its log."""
    try:
        lines = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        lines = []
    return lines[-1] if lines else f"see {log}"
