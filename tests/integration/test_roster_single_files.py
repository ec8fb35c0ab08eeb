"""The upload document's files as it states them, end to end: staff ids with any 7-bit ASCII
character, a users file without Email/Password, each file uploaded on its own, the caps.

One worker for the module; every test has districts of its own. The last test stops the
worker and reads ClickHouse (chDB: one process per data path).
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition

from abacus.embedded.broker import EmbeddedBroker
from tests.support.stack import ABACUS, Stack, wait_until

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CONFIG = EXAMPLES / "district" / "district.toml"
USERS, STUDENTS, LINKS = "1_users.csv", "2_students.csv", "3_teacher_students.csv"
KEPT = "not uploaded; the published records are kept as they are"


@pytest.fixture(scope="module")
def shared(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(broker.bootstrap, tmp_path_factory.mktemp("single-files-home"))
    stack.start_worker()
    yield stack
    stack.close()


# --- helpers: the files as the district wrote them, edited the way an operator would -------------


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def write(path: Path, records: list[dict[str, str]], columns: list[str] | None = None) -> Path:
    columns = columns or list(records[0])
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, columns, extrasaction="ignore", lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(records)
    return path


def only(folder: Path, *names: str) -> Path:
    """A copy of `folder` holding just these roster files."""
    dest = folder.parent / f"{folder.name}-{'-'.join(n[0] for n in names)}"
    dest.mkdir()
    for name in names:
        shutil.copy(folder / name, dest / name)
    return dest


def roster_import(stack: Stack, folder: Path, district: str, **env: str) -> Any:
    args = ["roster", "import", str(folder), "--district", district, "--config", str(CONFIG)]
    return subprocess.run(
        [*ABACUS, *args], env={**stack.env, **env}, capture_output=True, text=True, timeout=120
    )


def line_of(stdout: str, file: str) -> str:
    return next(line for line in stdout.splitlines() if line.startswith(f"{file}:"))


def stored_counts(stack: Stack) -> dict[str, float]:
    return {k: v for k, v in stack.metrics().items() if k.startswith("abacus_roster_records")}


def wait_stored(stack: Stack, before: dict[str, float], **kinds: int) -> None:
    def done() -> bool:
        now = stack.metrics()
        return all(
            now.get(key := f"abacus_roster_records_total{{kind={kind},outcome=stored}}", 0)
            - before.get(key, 0)
            >= n
            for kind, n in kinds.items()
        )

    wait_until(done, 60, f"roster records stored: {kinds}")


def district_keys(stack: Stack, district: str) -> list[bytes]:
    names = ("roster-users", "roster-students", "roster-teacher-students", "district-config")
    consumer = KafkaConsumer(bootstrap_servers=stack.bootstrap, consumer_timeout_ms=1500)
    parts = [TopicPartition(stack.topic(name), 0) for name in names]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    keys = [r.key for r in consumer if r.key and r.key.split(b"|")[0] == district.encode()]
    consumer.close()
    return keys


# --- staff ids and optional columns -------------------------------------------------------------


def test_a_staff_id_like_t100_and_no_email_or_password_columns(
    shared: Stack, tmp_path: Path
) -> None:
    folder = tmp_path / "upload"
    shutil.copytree(EXAMPLES / "district", folder)
    users = rows(folder / USERS)
    for user in users:
        if user["Employee_ID"] == "0101":
            user["Employee_ID"] = "T-100"
        if user["Employee_ID"] == "0102":
            user["First_Name"] = "Rosa2"  # a digit in a type A name: imported, with a warning
    columns = [c for c in users[0] if c not in ("Email", "Password")]
    write(folder / USERS, users, columns)
    links = rows(folder / LINKS)
    for link in links:
        link["EmployeeID"] = "T-100" if link["EmployeeID"] == "0101" else link["EmployeeID"]
    write(folder / LINKS, links)
    taught = sum(1 for link in links if link["EmployeeID"] == "T-100")
    assert taught > 0

    before = stored_counts(shared)
    proc = roster_import(shared, folder, "ascii-ids")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert line_of(proc.stdout, USERS).startswith("1_users.csv: 8 accepted, 0 rejected,")
    assert line_of(proc.stdout, LINKS).startswith("3_teacher_students.csv: 50 accepted, 0 rej")
    assert "1 warning(s), rows imported; see" in proc.stdout
    (warning,) = rows(folder / "roster_errors.csv")
    assert (warning["line"], warning["column"], warning["value"]) == ("3", "First_Name", "R***")
    assert warning["reason"].startswith("warning: contains digits")
    wait_stored(shared, before, users=8, students=40, links=50)

    export = shared.run(
        "export", "request", "--district", "ascii-ids", "--requester", "T-100",
        "--product", "both", "--ytd", "--wait",
    )  # fmt: skip
    status = json.loads(export.stdout.splitlines()[1])
    assert status["status"] == "completed", status
    assert status["rows"] == taught


# --- each file on its own -------------------------------------------------------------------------


def test_each_file_uploaded_alone_replaces_its_kind_and_keeps_the_others(
    shared: Stack, tmp_path: Path
) -> None:
    district = "single-files"
    folder = tmp_path / "upload"
    shutil.copytree(EXAMPLES / "district", folder)
    before = stored_counts(shared)
    assert roster_import(shared, folder, district).returncode == 0
    wait_stored(shared, before, users=8, students=40, links=50)

    # Links alone: 20040's two links gone, one new, and two rows naming what the published
    # roster lacks (checked against it, as the document says: ids must exist first).
    links = [r for r in rows(folder / LINKS) if r["StudentID"] != "20040"]
    links += [
        {"EmployeeID": "0102", "StudentID": "20001"},
        {"EmployeeID": "0102", "StudentID": "29999"},
        {"EmployeeID": "0999", "StudentID": "20001"},
    ]
    write(folder / LINKS, links)
    before = stored_counts(shared)
    proc = roster_import(shared, only(folder, LINKS), district)
    assert proc.returncode == 1
    assert line_of(proc.stdout, USERS) == f"1_users.csv: {KEPT}"
    assert line_of(proc.stdout, STUDENTS) == f"2_students.csv: {KEPT}"
    assert line_of(proc.stdout, LINKS) == (
        "3_teacher_students.csv: 49 accepted, 2 rejected, 48 unchanged, 0 updated, 1 new,"
        " 2 deactivated"
    )
    report = {(r["line"], r["column"]): r["reason"] for r in rows(only_report(proc))}
    assert report == {
        ("51", "StudentID"): "not on the published roster (2_students.csv not uploaded)",
        ("52", "EmployeeID"): "not on the published roster (1_users.csv not uploaded)",
    }
    wait_stored(shared, before, links=3)

    # Students alone: 20039 gone, 20005 changed; links and staff stay as they are.
    students = [r for r in rows(folder / STUDENTS) if r["StudentID"] != "20039"]
    for student in students:
        if student["StudentID"] == "20005":
            student["Grade"] = "1"
    write(folder / STUDENTS, students)
    before = stored_counts(shared)
    proc = roster_import(shared, only(folder, STUDENTS), district)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert line_of(proc.stdout, STUDENTS) == (
        "2_students.csv: 39 accepted, 0 rejected, 38 unchanged, 1 updated, 0 new, 1 deactivated"
    )
    assert line_of(proc.stdout, LINKS) == f"3_teacher_students.csv: {KEPT}"
    wait_stored(shared, before, students=2)

    # Users alone: 0103 gone; students and links stay (0103's links too: the export names
    # only active staff as teachers).
    users = [r for r in rows(folder / USERS) if r["Employee_ID"] != "0103"]
    write(folder / USERS, users)
    before = stored_counts(shared)
    proc = roster_import(shared, only(folder, USERS), district)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert line_of(proc.stdout, USERS) == (
        "1_users.csv: 7 accepted, 0 rejected, 7 unchanged, 0 updated, 0 new, 1 deactivated"
    )
    assert line_of(proc.stdout, STUDENTS) == f"2_students.csv: {KEPT}"
    wait_stored(shared, before, users=1)


def only_report(proc: Any) -> Path:
    return Path(proc.stdout.split("error report: ", 1)[1].splitlines()[0])


# --- caps -----------------------------------------------------------------------------------------


def test_caps_refuse_the_upload_with_one_line(shared: Stack, tmp_path: Path) -> None:
    folder = tmp_path / "upload"
    shutil.copytree(EXAMPLES / "district", folder)
    proc = roster_import(shared, folder, "capped", ABACUS_ROSTER__MAX_ROWS="39")
    assert proc.returncode == 1
    assert proc.stderr == (
        "abacus: 2_students.csv: more than 39 rows (ABACUS_ROSTER__MAX_ROWS); nothing imported\n"
    )
    size = (folder / STUDENTS).stat().st_size
    proc = roster_import(shared, folder, "capped", ABACUS_ROSTER__MAX_FILE_BYTES=str(size - 1))
    assert proc.returncode == 1
    assert proc.stderr == (
        f"abacus: 2_students.csv: {size:,} bytes, over the limit of {size - 1:,}"
        " (ABACUS_ROSTER__MAX_FILE_BYTES); nothing imported\n"
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = roster_import(shared, empty, "capped")
    assert proc.returncode == 1
    assert proc.stderr == (
        "abacus: empty: none of 1_users.csv, 2_students.csv, 3_teacher_students.csv is there;"
        " nothing imported\n"
    )
    assert not (folder / "roster_errors.csv").exists()
    assert district_keys(shared, "capped") == []


# --- last: what ClickHouse holds ------------------------------------------------------------------


def test_clickhouse_holds_what_each_upload_said(shared: Stack) -> None:
    assert shared.stop_worker() == 0

    def active(table: str, columns: str, district: str) -> set[tuple[Any, ...]]:
        got = shared.query(
            f"SELECT {columns} FROM abacus.{table} FINAL "
            "WHERE district_id = {d:String} AND is_active = 1",
            d=district,
        )
        return {tuple(row) for row in got}

    links = active("roster_links", "employee_id, student_id", "single-files")
    original = {(r["EmployeeID"], r["StudentID"]) for r in rows(EXAMPLES / "district" / LINKS)}
    assert links == {p for p in original if p[1] != "20040"} | {("0102", "20001")}
    students = {s for (s,) in active("roster_students", "student_id", "single-files")}
    assert students == {str(n) for n in range(20001, 20041)} - {"20039"}
    grade = shared.query(
        "SELECT grade FROM abacus.roster_students FINAL WHERE district_id = 'single-files'"
        " AND student_id = '20005'"
    )
    assert grade == [["1"]]
    staff = {e for (e,) in active("roster_users", "employee_id", "single-files")}
    assert staff == {r["Employee_ID"] for r in rows(EXAMPLES / "district" / USERS)} - {"0103"}
    t100 = shared.query(
        "SELECT employee_id, email FROM abacus.roster_users FINAL"
        " WHERE district_id = 'ascii-ids' AND employee_id = 'T-100'"
    )
    assert t100 == [["T-100", ""]]
