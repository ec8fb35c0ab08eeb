"""`abacus roster import PACKAGE` with OneRoster 1.1 packages: real broker, worker, ClickHouse.

The strong oracle: the OneRoster equivalent of the example district, imported next to the
example's upload-document files, gives a Student Data Export equal byte for byte.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from abacus.embedded.broker import EmbeddedBroker
from abacus.simulator import SimStudent, SimulationConfig, simulate
from tests.support.export_truth import norm_grade, read_csv
from tests.support.oneroster import as_delta, from_upload
from tests.support.produce import produce_events, wait_consumed
from tests.support.stack import Stack, wait_until

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CONFIG = EXAMPLES / "district" / "district.toml"
TZ = "America/Chicago"


def roster_import(stack: Stack, path: Path, district: str, *extra: str) -> Any:
    return stack.run(
        "roster", "import", str(path), "--district", district, "--config", str(CONFIG), *extra,
        check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def shared(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One worker for the module (each test uses districts of its own)."""
    stack = Stack(broker.bootstrap, tmp_path_factory.mktemp("oneroster-home"))
    stack.start_worker()
    yield stack
    stack.close()


def counts(stack: Stack) -> dict[str, float]:
    return {k: v for k, v in stack.metrics().items() if k.startswith("abacus_roster_records")}


def stored(stack: Stack, before: dict[str, float], **kinds: int) -> None:
    """Wait until the worker has stored `kinds` more records of each kind than `before`."""

    def done() -> bool:
        m = stack.metrics()
        return all(
            m.get(key := f"abacus_roster_records_total{{kind={kind},outcome=stored}}", 0)
            - before.get(key, 0)
            >= n
            for kind, n in kinds.items()
        )

    wait_until(done, 60, f"roster records stored: {kinds}")


def summary(stdout: str, label: str) -> str:
    return next(line for line in stdout.splitlines() if line.startswith(label))


# --- the export oracle -------------------------------------------------------------------------

SPRING = (date(2026, 4, 20), date(2026, 5, 29))


def _events_for(district: str, students: list[SimStudent]) -> list[dict[str, Any]]:
    events = simulate(
        students, SimulationConfig(district, TZ, *SPRING, seed=5, duplicate_share=0.05)
    )
    namespace = uuid.uuid5(uuid.NAMESPACE_URL, district)
    for event in events:  # the same history, under ids of its own district
        event["event_id"] = str(uuid.uuid5(namespace, event["event_id"]))
    return events


def _export(stack: Stack, district: str) -> bytes:
    proc = stack.run(
        "export", "request", "--district", district, "--requester", "0401", "--product", "both",
        "--start", SPRING[0].isoformat(), "--end", SPRING[1].isoformat(), "--wait",
    )  # fmt: skip
    status = json.loads(proc.stdout.splitlines()[1])
    assert status["rows"] == 40, status
    return Path(status["path"]).read_bytes()


def test_the_export_equals_the_one_from_the_equivalent_upload(
    shared: Stack, tmp_path: Path
) -> None:
    stack = shared
    before = counts(stack)
    easy = shutil.copytree(EXAMPLES / "district", tmp_path / "easy")
    package = from_upload(easy).write_zip(tmp_path / "oneroster" / "district.zip")
    students = [
        SimStudent(r["StudentID"], norm_grade(r["Grade"]))
        for r in read_csv(easy / "2_students.csv")
    ]
    assert roster_import(stack, easy, "mv-easy").returncode == 0
    proc = roster_import(stack, package, "mv-oneroster")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    stored(stack, before, users=16, students=80, links=100, district_config=2)
    for district in ("mv-easy", "mv-oneroster"):
        wait_consumed(stack, produce_events(stack, _events_for(district, students)))
    from_easy, from_oneroster = _export(stack, "mv-easy"), _export(stack, "mv-oneroster")
    assert from_easy.count(b"\r\n") == 41
    assert from_oneroster == from_easy


def test_bulk_reupload_delta_and_bad_rows_end_to_end(shared: Stack, tmp_path: Path) -> None:
    """Runs last in the module: it stops the shared worker to read ClickHouse."""
    stack = shared
    before = counts(stack)
    pkg = from_upload(EXAMPLES / "district")
    first = roster_import(stack, pkg.write_zip(tmp_path / "v1" / "roster.zip"), "or-district")
    assert first.returncode == 0, first.stdout + first.stderr
    assert summary(first.stdout, "users.csv: students") == (
        "users.csv: students: 40 accepted, 0 rejected, 0 unchanged, 0 updated, 40 new,"
        " 0 deactivated"
    )
    assert "users.csv: staff: 8 accepted, 0 rejected, 0 unchanged, 0 updated, 8 new" in first.stdout
    assert "enrollments.csv: teacher-student links: 55 accepted, 0 rejected, 0 unchanged," in (
        first.stdout
    )
    assert "district config: new" in first.stdout
    assert not (tmp_path / "v1" / "roster_errors.csv").exists()

    # The same package again, this time as a folder: nothing to publish.
    again = roster_import(stack, pkg.write(tmp_path / "v1-folder"), "or-district")
    assert again.returncode == 0, again.stderr
    for label in ("users.csv: staff", "users.csv: students", "enrollments.csv: teacher"):
        assert ", 0 updated, 0 new, 0 deactivated" in summary(again.stdout, label), label
    assert "district config: unchanged" in again.stdout

    # Bulk: 20040 is gone from users.csv (and its enrollments) -> deactivated, history kept.
    v2 = pkg.copy()
    gone = v2.find("users.csv", identifier="20040")["sourcedId"]
    v2.rows["users.csv"].remove(v2.find("users.csv", sourcedId=gone))
    v2.rows["enrollments.csv"] = [
        r for r in v2.rows["enrollments.csv"] if r["userSourcedId"] != gone
    ]
    v2.rows["demographics.csv"] = [r for r in v2.rows["demographics.csv"] if r["sourcedId"] != gone]
    proc = roster_import(stack, v2.write_zip(tmp_path / "v2" / "roster.zip"), "or-district")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[1:] == [  # the README shows this output
        "orgs.csv (bulk): 3 accepted, 0 rejected",
        "academicSessions.csv (bulk): 1 accepted, 0 rejected",
        "courses.csv (bulk): 1 accepted, 0 rejected",
        "classes.csv (bulk): 5 accepted, 0 rejected",
        "users.csv (bulk): 47 accepted, 0 rejected",
        "enrollments.csv (bulk): 53 accepted, 0 rejected",
        "demographics.csv (bulk): 39 accepted, 0 rejected",
        "users.csv: staff: 8 accepted, 0 rejected, 8 unchanged, 0 updated, 0 new, 0 deactivated",
        "users.csv: students: 39 accepted, 0 rejected, 39 unchanged, 0 updated, 0 new,"
        " 1 deactivated",
        "enrollments.csv: teacher-student links: 53 accepted, 0 rejected, 48 unchanged,"
        " 0 updated, 0 new, 2 deactivated",
        "district config: unchanged",
    ]

    # Delta: 20010 tobedeleted; 20005 renamed; one enrollment of 20024 tobedeleted.
    leaver = pkg.find("users.csv", identifier="20010")
    renamed = {**pkg.find("users.csv", identifier="20005"), "givenName": "Pip", "status": "active"}
    klass = pkg.find("classes.csv", title="Math 0102")["sourcedId"]
    enrollment = next(
        r
        for r in pkg.rows["enrollments.csv"]
        if r["classSourcedId"] == klass
        and r["userSourcedId"] == pkg.find("users.csv", identifier="20024")["sourcedId"]
    )
    delta = as_delta(
        pkg,
        {
            "users.csv": [{"sourcedId": leaver["sourcedId"], "status": "tobedeleted"}, renamed],
            "enrollments.csv": [{"sourcedId": enrollment["sourcedId"], "status": "tobedeleted"}],
        },
    )
    proc = roster_import(stack, delta.write(tmp_path / "delta"), "or-district")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "classes.csv: absent (5 stored row(s) kept)" in proc.stdout
    assert "users.csv (delta): 2 accepted, 0 rejected, 1 tobedeleted" in proc.stdout
    assert ", 37 unchanged, 1 updated, 0 new, 1 deactivated" in summary(
        proc.stdout, "users.csv: students"
    )

    # A bad row: reported with file, line, column, masked value; --strict publishes nothing.
    bad = v2.copy()
    bad.find("users.csv", identifier="20001")["grades"] = "UG"
    bad.find("users.csv", identifier="20002")["givenName"] = "Jun\x01per"
    zipped = bad.write_zip(tmp_path / "bad" / "roster.zip")
    strict = roster_import(stack, zipped, "or-district", "--strict")
    report = tmp_path / "bad" / "roster_errors.csv"
    assert strict.returncode == 1
    assert strict.stderr.strip() == (
        f"abacus: 2 roster row(s) rejected; nothing imported (--strict); see {report}"
    )
    rows = list(csv.DictReader(report.open(newline="")))
    line_1 = bad.line_of("users.csv", identifier="20001")
    line_2 = bad.line_of("users.csv", identifier="20002")
    assert {(r["file"], int(r["line"]), r["column"], r["value"]) for r in rows} == {
        ("users.csv", line_1, "grades", "UG"),
        ("users.csv", line_2, "givenName", "J***"),
    }
    assert re.search(rf"^users\.csv +{line_2} +givenName +J\*\*\* ", strict.stdout, re.M)
    assert "(nothing imported: --strict)" in summary(strict.stdout, "users.csv: students")
    stored(stack, before, users=8, students=40 + 1 + 2, links=50 + 2 + 2, district_config=1)
    assert stack.stop_worker() == 0

    students = {
        r[0]: r[1:]
        for r in stack.query(
            "SELECT student_id, first_name, is_active, sourced_id FROM abacus.roster_students "
            "FINAL WHERE district_id = 'or-district'"
        )
    }
    assert len(students) == 40
    assert students["20040"][:2] == ["Fern", 0]
    assert students["20010"][:2] == ["Fennel", 0]
    assert students["20005"][:2] == ["Pip", 1]
    assert students["20001"] == [
        "Zephyr",
        1,
        pkg.find("users.csv", identifier="20001")["sourcedId"],
    ]
    assert sum(1 for s in students.values() if s[1] == 1) == 38
    links = stack.query(
        "SELECT employee_id, student_id FROM abacus.roster_links FINAL "
        "WHERE district_id = 'or-district' AND is_active = 0 ORDER BY 1, 2"
    )
    assert links == [["0102", "20010"], ["0102", "20024"], ["0201", "20040"], ["0202", "20040"]]
    staff = stack.query(
        "SELECT employee_id, user_type, sourced_id != '' FROM abacus.roster_users FINAL "
        "WHERE district_id = 'or-district' ORDER BY 1"
    )
    assert [s[0] for s in staff] == ["0101", "0102", "0103", "0201", "0202", "0301", "0401", "0501"]
    assert all(s[2] == 1 for s in staff)
