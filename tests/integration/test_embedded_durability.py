"""`abacus up` on its own embedded broker loses nothing on a stop or a worker crash.

One `abacus up` home for the module, started and stopped by each test (the embedded
broker, memory-only, dies with each stop; ClickHouse under the home is the record):
(a) events sent and SIGTERM at once: the worker drains before the broker stops;
(b) a roster import after a restart still deactivates a student removed from the upload;
(b') a OneRoster delta package after a restart still finds the rows of earlier uploads;
(c) a SIGKILLed worker is restarted by `abacus up` and every event is counted once.
"""

from __future__ import annotations

import csv
import os
import shutil
import signal
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from abacus.embedded.broker import free_port
from abacus.kafka.broker_epoch import read_meta
from abacus.simulator import SimulationConfig, simulate
from tests.integration.test_aggregation import (
    DISTRICT,
    EXAMPLES,
    TZ,
    as_float,
    import_roster,
    roster_students,
    stored_daily,
)
from tests.support.oneroster import as_delta, from_upload
from tests.support.produce import produce_events, wait_consumed
from tests.support.stack import Stack, wait_until
from tests.support.truth import daily_truth


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("embedded") / "home"
    stack = Stack(f"127.0.0.1:{free_port()}", home, embedded=True)
    stack.extra_env["ABACUS_SUPERVISOR__BACKOFF_INITIAL_S"] = "0.2"
    # Small batches: a backlog then takes many fetches, so a worker that stopped reading
    # at SIGTERM (instead of draining) would leave most of it unread.
    stack.extra_env["ABACUS_INGEST_BATCH_RECORDS"] = "500"
    stack.extra_env.update(
        ABACUS_INGEST_PROCESSES="1",
        ABACUS_BROKER__SESSION_TIMEOUT_S="3",  # the restarted worker's join waits for the
        ABACUS_BROKER__REBALANCE_TIMEOUT_S="3",  # SIGKILLed member (Tansu never evicts it)
    )
    yield stack
    stack.close()


def _events(district: str, first: date, last: date, seed: int) -> list[dict[str, Any]]:
    return simulate(roster_students(), SimulationConfig(district, TZ, first, last, seed=seed))


def _stored_ids(stack: Stack, district: str) -> list[str]:
    rows = stack.query(
        "SELECT toString(event_id) FROM abacus.events FINAL WHERE district_id = {d:String}",
        d=district,
    )
    return sorted(r[0] for r in rows)


def test_sigterm_right_after_sending_drains_every_event_before_the_broker_stops(
    up: Stack,
) -> None:
    district = "drain-district"  # never configured: its events are stored as pending
    events = _events(district, date(2026, 10, 5), date(2026, 10, 16), seed=21)
    up.start_up()
    worker = up.supervised_worker_pid()
    assert worker is not None
    os.kill(worker, signal.SIGSTOP)  # nothing is read while the events go out
    try:
        produce_events(up, events)
    finally:
        os.kill(worker, signal.SIGCONT)
    assert up.stop_worker(signal.SIGTERM) == 0  # at once: the whole backlog is unread
    assert "drained: lag 0" in up.log_tail(400)
    expected = sorted({e["event_id"] for e in events})
    assert _stored_ids(up, district) == expected
    epochs = up.query(
        "SELECT DISTINCT src_epoch FROM abacus.events WHERE district_id = {d:String}", d=district
    )
    assert len(epochs) == 1
    assert epochs[0][0] != ""
    # After a restart (a new broker, a new epoch, empty topics) everything is still counted.
    up.start_up()
    assert up.stop_worker(signal.SIGTERM) == 0
    assert _stored_ids(up, district) == expected


def _without_student(src: Path, dest: Path, student: str) -> Path:
    shutil.copytree(src, dest)
    for name, column in (("2_students.csv", "StudentID"), ("3_teacher_students.csv", "StudentID")):
        path = dest / name
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            fields = reader.fieldnames
            rows = [r for r in reader if r[column] != student]
        assert fields is not None
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=fields, lineterminator="\r\n")
            writer.writeheader()
            writer.writerows(rows)
    return dest


def _wait_students_stored(stack: Stack, n: int) -> None:
    key = "abacus_roster_records_total{kind=students,outcome=stored}"
    wait_until(lambda: stack.metrics().get(key, 0) >= n, 60, f"{n} student records stored")


def test_a_roster_import_after_a_restart_still_deactivates_a_removed_student(
    up: Stack, tmp_path: Path
) -> None:
    district, removed = "restart-district", "20001"
    up.start_up()
    first = up.run("roster", "import", str(EXAMPLES), "--district", district)
    assert "2_students.csv: 40 accepted, 0 rejected, 0 unchanged, 0 updated, 40 new" in first.stdout
    _wait_students_stored(up, 40)
    epoch_before = read_meta(up.settings).epoch
    assert up.stop_worker(signal.SIGTERM) == 0

    up.start_up()  # a new embedded broker: its roster topics start empty
    assert read_meta(up.settings).epoch != epoch_before
    folder = _without_student(EXAMPLES, tmp_path / "roster", removed)
    second = up.run("roster", "import", str(folder), "--district", district)
    assert "2_students.csv: 39 accepted, 0 rejected, 39 unchanged" in second.stdout
    assert "1 deactivated" in second.stdout
    _wait_students_stored(up, 40 + 1)  # the 40 restored from ClickHouse, then the change
    assert up.stop_worker(signal.SIGTERM) == 0
    rows = up.query(
        "SELECT student_id, is_active FROM abacus.roster_students FINAL "
        "WHERE district_id = {d:String}",
        d=district,
    )
    active = {sid: flag for sid, flag in rows}
    assert len(active) == 40
    assert active.pop(removed) == 0
    assert set(active.values()) == {1}


def test_a_oneroster_delta_after_a_restart_finds_the_rows_of_earlier_uploads(
    up: Stack, tmp_path: Path
) -> None:
    district, config = "or-restart-district", str(EXAMPLES / "district.toml")
    pkg = from_upload(EXAMPLES)
    up.start_up()
    bulk = pkg.write_zip(tmp_path / "bulk" / "roster.zip")
    first = up.run("roster", "import", str(bulk), "--district", district, "--config", config)
    assert "users.csv: students: 40 accepted, 0 rejected, 0 unchanged, 0 updated, 40 new" in (
        first.stdout
    )
    state = "abacus_roster_records_total{kind=oneroster_state,outcome=stored}"
    # The importer's state: one bucket each for orgs, classes, users and enrollments.
    wait_until(lambda: up.metrics().get(state, 0) >= 4, 60, "the OneRoster state stored")
    _wait_students_stored(up, 40)
    epoch_before = read_meta(up.settings).epoch
    assert up.stop_worker(signal.SIGTERM) == 0

    up.start_up()  # a new embedded broker: roster-oneroster starts empty, like the others
    assert read_meta(up.settings).epoch != epoch_before
    # Rows only the bulk upload named: a student to delete, a class and a student to enrol.
    leaver = pkg.find("users.csv", identifier="20010")["sourcedId"]
    klass = pkg.find("classes.csv", title="Math 0101")
    pupil = pkg.find("users.csv", identifier="20024")["sourcedId"]
    delta = as_delta(
        pkg,
        {
            "users.csv": [{"sourcedId": leaver, "status": "tobedeleted"}],
            "enrollments.csv": [
                {
                    "sourcedId": "enr-after-restart",
                    "status": "active",
                    "classSourcedId": klass["sourcedId"],
                    "schoolSourcedId": klass["schoolSourcedId"],
                    "userSourcedId": pupil,
                    "role": "student",
                }
            ],
        },
    )
    args = ("roster", "import", str(delta.write(tmp_path / "delta")), "--district", district)
    second = up.run(*args, "--config", config, check=False)
    assert second.returncode == 0, second.stdout + second.stderr
    lines = {line.split(":", 2)[1].strip(): line for line in second.stdout.splitlines()[1:]}
    assert lines["students"].endswith("39 unchanged, 0 updated, 0 new, 1 deactivated")
    assert lines["teacher-student links"].endswith("0 updated, 1 new, 1 deactivated")
    _wait_students_stored(up, 40 + 1)  # the 40 restored from ClickHouse, then the change
    assert up.stop_worker(signal.SIGTERM) == 0
    rows = up.query(
        "SELECT student_id, is_active FROM abacus.roster_students FINAL "
        "WHERE district_id = {d:String} AND student_id IN ('20010', '20024')",
        d=district,
    )
    assert sorted(rows) == [["20010", 0], ["20024", 1]]
    links = up.query(
        "SELECT employee_id, student_id, is_active FROM abacus.roster_links FINAL "
        "WHERE district_id = {d:String} AND student_id IN ('20010', '20024') ORDER BY 1, 2",
        d=district,
    )
    assert ["0101", "20024", 1] in links
    assert ["0102", "20010", 0] in links


def test_a_killed_worker_is_restarted_by_abacus_up_and_nothing_is_lost(up: Stack) -> None:
    events = _events(DISTRICT, date(2026, 10, 19), date(2026, 10, 30), seed=23)
    half = len(events) // 2
    up.start_up()
    import_roster(up)
    ends = produce_events(up, events[:half], batch_share=0.3)
    first = up.supervised_worker_pid()
    assert first is not None
    os.kill(first, signal.SIGKILL)
    restarted = wait_until(
        lambda: (pid := up.supervised_worker_pid()) not in (None, first) and pid, 30, "a restart"
    )
    wait_until(up._ready, 60, "the restarted worker to be ready")
    assert up.worker is not None
    assert up.worker.poll() is None, "abacus up itself kept running"
    more = produce_events(up, events[half:], batch_share=0.3, seed=2)
    wait_consumed(up, {p: max(ends.get(p, 0), more.get(p, 0)) for p in {*ends, *more}})
    assert up.supervised_worker_pid() == restarted
    up.wait_rollups()  # stored_daily reads the rollups: late keys rebuilt after the restart
    assert up.stop_worker(signal.SIGTERM) == 0
    assert "worker exited with status -9; restart 1" in up.log_tail(2000)
    got = stored_daily(up)
    want = as_float(daily_truth(events, TZ))
    assert {k: v for k, v in got.items() if k[1] >= date(2026, 10, 19)} == want
