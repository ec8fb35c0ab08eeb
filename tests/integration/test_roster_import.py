"""`abacus roster import` → compacted topics → roster agent → ClickHouse dimension tables."""

from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from tests.support.stack import Stack, wait_until

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CONFIG = EXAMPLES / "district" / "district.toml"
ROSTER_TOPICS = ("roster-users", "roster-students", "roster-teacher-students", "district-config")


# --- ground truth, read straight from the CSV files --------------------------------------------


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _grade(raw: str) -> str:
    return {"PK": "PK", "K": "K", "KG": "K"}.get(raw) or str(int(raw))


def expected_students(folder: Path, skip_lines: set[int] = frozenset()) -> dict[str, list[Any]]:
    out = {}
    for line, row in enumerate(_csv(folder / "2_students.csv"), start=2):
        if line not in skip_lines:
            out[row["StudentID"]] = [
                row["First"],
                row["Last"],
                _grade(row["Grade"]),
                row["Building_Name"],
                int(row["ELL"] == "Y"),
                int(row["SPED"] == "Y"),
                row["District_Data_1"],
                row["District_Data_2"],
                1,
            ]
    return out


def expected_links(folder: Path, skip_lines: set[int] = frozenset()) -> set[tuple[str, str]]:
    rows = enumerate(_csv(folder / "3_teacher_students.csv"), start=2)
    return {(r["EmployeeID"], r["StudentID"]) for line, r in rows if line not in skip_lines}


# --- helpers ------------------------------------------------------------------------------------


def copy_roster(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest


def roster_import(stack: Stack, folder: Path, district: str, *extra: str) -> Any:
    return stack.run("roster", "import", str(folder), "--district", district, *extra, check=False)


def wait_stored(stack: Stack, **kinds: int) -> None:
    def done() -> bool:
        m = stack.metrics()
        return all(
            m.get(f"abacus_roster_records_total{{kind={kind},outcome=stored}}", 0) >= n
            for kind, n in kinds.items()
        )

    wait_until(done, 60, f"roster records stored: {kinds}")


def students(stack: Stack, district: str) -> dict[str, list[Any]]:
    rows = stack.query(
        "SELECT student_id, first_name, last_name, grade, building, is_ell, is_iep, "
        "district_data_1, district_data_2, is_active FROM abacus.roster_students FINAL "
        f"WHERE district_id = '{district}'"
    )
    return {r[0]: r[1:] for r in rows}


def links(stack: Stack, district: str, active: int = 1) -> set[tuple[str, str]]:
    rows = stack.query(
        "SELECT employee_id, student_id FROM abacus.roster_links FINAL "
        f"WHERE district_id = '{district}' AND is_active = {active}"
    )
    return {(r[0], r[1]) for r in rows}


def topic_values(stack: Stack) -> list[bytes]:
    consumer = KafkaConsumer(bootstrap_servers=stack.bootstrap, consumer_timeout_ms=1500)
    parts = [TopicPartition(stack.topic(t), 0) for t in ROSTER_TOPICS]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    values = [record.value for record in consumer]
    consumer.close()
    return values


# --- tests --------------------------------------------------------------------------------------


def test_clean_roster_imports_exactly_its_rows(stack: Stack, tmp_path: Path) -> None:
    folder = copy_roster(EXAMPLES / "district", tmp_path / "upload")
    stack.start_worker()
    proc = roster_import(stack, folder, "maple-valley")
    assert proc.returncode == 0, proc.stderr
    assert "2_students.csv: 40 accepted, 0 rejected, 0 unchanged, 0 updated, 40 new," in proc.stdout
    assert "district config: new" in proc.stdout
    assert not (folder / "roster_errors.csv").exists()
    wait_stored(stack, users=8, students=40, links=50, district_config=1)
    assert stack.stop_worker() == 0

    assert students(stack, "maple-valley") == expected_students(folder)
    assert links(stack, "maple-valley") == expected_links(folder)
    users = stack.query(
        "SELECT employee_id, username, first_name, last_name, user_type, buildings, is_active "
        "FROM abacus.roster_users FINAL ORDER BY employee_id"
    )
    assert users == [
        [
            r["Employee_ID"],
            r["Username"],
            r["First_Name"],
            r["Last_Name"],
            int(r["User_Type"]),
            r["Building_Names"].split(";") if r["Building_Names"] else [],
            1,
        ]
        for r in _csv(folder / "1_users.csv")
    ]
    districts = stack.query("SELECT district_id, name, timezone FROM abacus.districts FINAL")
    assert districts == [["maple-valley", "Maple Valley Unified", "America/Chicago"]]
    # Data minimisation: no date of birth, demographics or password anywhere downstream.
    columns = {
        r[0]
        for r in stack.query(
            "SELECT name FROM system.columns WHERE database = 'abacus' AND table LIKE 'roster%'"
        )
    }
    assert not columns & {"date_of_birth", "gender", "race", "ethnicity", "password"}
    published = b"".join(topic_values(stack))
    assert b"Example-Only-1" not in published  # the admin's password in 1_users.csv
    assert b"01/01/2021" not in published
    assert b"Hispanic" not in published


def test_bad_rows_are_reported_and_the_rest_imports(stack: Stack, tmp_path: Path) -> None:
    folder = copy_roster(EXAMPLES / "bad_roster", tmp_path / "upload")
    stack.start_worker()
    proc = roster_import(stack, folder, "maple-valley", "--config", str(CONFIG))
    report = folder / "roster_errors.csv"
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"abacus: 10 roster row(s) rejected; see {report}"
    assert "2_students.csv: 20 accepted, 7 rejected, 0 unchanged, 0 updated, 20 new" in proc.stdout
    assert "3_teacher_students.csv: 25 accepted, 3 rejected" in proc.stdout
    rows = _csv(report)
    got = {(r["file"], int(r["line"]), r["column"]): r for r in rows}
    expected = {
        ("2_students.csv", 5, "Date_of_Birth"): "not a real calendar date",
        ("2_students.csv", 9, "Grade"): "grade must be PK, K/KG or 1-12",
        ("2_students.csv", 13, "Gender"): "must be F or M",
        ("2_students.csv", 17, "Race"): "not an allowed Race value",
        ("2_students.csv", 21, "Building_Name"): "case differs from 'Oak Elementary'",
        ("2_students.csv", 25, "StudentID"): "not 7-bit ASCII",
        ("2_students.csv", 28, "StudentID"): "duplicate StudentID (first at line 4)",
        ("3_teacher_students.csv", 7, "StudentID"): "not found in 2_students.csv",
        ("3_teacher_students.csv", 14, "EmployeeID"): "leading zeros differ",
        ("3_teacher_students.csv", 19, "StudentID"): "refers to a rejected row",
    }
    assert set(got) == set(expected)
    for where, reason in expected.items():
        assert reason in got[where]["reason"], where
    assert got[("2_students.csv", 5, "Date_of_Birth")]["value"] == "0***"  # masked
    assert re.search(r"^2_students\.csv +5 +Date_of_Birth +0\*\*\* ", proc.stdout, re.M)  # table
    wait_stored(stack, users=8, students=20, links=25)
    assert stack.stop_worker() == 0

    good = expected_students(folder, skip_lines={5, 9, 13, 17, 21, 25, 28})
    assert len(good) == 20
    assert students(stack, "maple-valley") == good
    assert links(stack, "maple-valley") == expected_links(folder, skip_lines={7, 14, 19})


def test_strict_imports_nothing_when_one_row_is_bad(stack: Stack, tmp_path: Path) -> None:
    folder = copy_roster(EXAMPLES / "district", tmp_path / "upload")
    lines = (folder / "2_students.csv").read_text().splitlines(keepends=True)
    lines[3] = lines[3].replace(",M,N,", ",X,N,")  # line 4: bad Gender
    (folder / "2_students.csv").write_text("".join(lines))
    stack.start_worker()
    proc = roster_import(stack, folder, "strict-district", "--strict")
    assert proc.returncode == 1
    assert "nothing imported (--strict)" in proc.stderr
    assert "2_students.csv: 39 accepted, 1 rejected (nothing imported: --strict)" in proc.stdout
    assert (folder / "roster_errors.csv").exists()
    assert topic_values(stack) == []
    # A later import of another district proves the worker has read past where the strict
    # one's records would have been (one partition per roster topic, read in order).
    marker = copy_roster(EXAMPLES / "district", tmp_path / "marker")
    assert roster_import(stack, marker, "marker-district").returncode == 0
    wait_stored(stack, users=8, students=40, links=50, district_config=1)
    assert stack.stop_worker() == 0
    for table in ("roster_students", "roster_users", "roster_links", "districts"):
        rows = stack.query(f"SELECT DISTINCT district_id FROM abacus.{table}")
        assert rows == [["marker-district"]], table


def test_reupload_updates_changed_and_deactivates_removed_students(
    stack: Stack, tmp_path: Path
) -> None:
    folder = copy_roster(EXAMPLES / "district", tmp_path / "upload")
    stack.start_worker()
    assert roster_import(stack, folder, "maple-valley").returncode == 0
    wait_stored(stack, students=40, links=50, district_config=1)
    # The worker loads district configs from ClickHouse when it starts.
    assert stack.stop_worker() == 0
    stack.start_worker()
    assert "1 district config(s) loaded" in stack.log_tail(200)

    v1 = expected_students(folder)
    students_csv = (folder / "2_students.csv").read_text().splitlines(keepends=True)
    students_csv[5] = students_csv[5].replace("Featherstone,Pippin,K,", "Featherstone,Pip,1,")
    removed = students_csv.pop(40)  # 20040
    assert removed.startswith("20040,")
    (folder / "2_students.csv").write_text("".join(students_csv))
    links_csv = (folder / "3_teacher_students.csv").read_text().splitlines(keepends=True)
    (folder / "3_teacher_students.csv").write_text(
        "".join(line for line in links_csv if not line.rstrip().endswith(",20040"))
    )
    proc = roster_import(stack, folder, "maple-valley")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "2_students.csv: 39 accepted, 0 rejected, 38 unchanged, 1 updated, 0 new, 1 deac" in out
    assert (
        "3_teacher_students.csv: 48 accepted, 0 rejected, 48 unchanged, 0 updated, 0 new, 2" in out
    )
    assert "1_users.csv: 8 accepted, 0 rejected, 8 unchanged, 0 updated, 0 new, 0 deact" in out
    assert "district config: unchanged" in out
    wait_stored(stack, students=2, links=2)  # counters restarted with the worker
    assert stack.stop_worker() == 0

    expected = dict(v1)
    expected["20005"] = ["Pip", *v1["20005"][1:2], "1", *v1["20005"][3:]]
    expected["20040"] = [*v1["20040"][:-1], 0]
    assert students(stack, "maple-valley") == expected
    assert links(stack, "maple-valley", active=0) == {("0201", "20040"), ("0202", "20040")}
    history = stack.query(
        "SELECT student_id, first_name, grade, is_active FROM abacus.roster_students_history "
        "WHERE student_id IN ('20005', '20040', '20001') ORDER BY student_id, version"
    )
    assert history == [
        ["20001", "Zephyr", "PK", 1],
        ["20005", "Pippin", "K", 1],
        ["20005", "Pip", "1", 1],
        ["20040", "Fern", "8", 1],
        ["20040", "Fern", "8", 0],
    ]


def test_two_districts_with_the_same_student_ids_never_mix(stack: Stack, tmp_path: Path) -> None:
    a = copy_roster(EXAMPLES / "district", tmp_path / "a")
    b = copy_roster(EXAMPLES / "district", tmp_path / "b")
    text = (b / "2_students.csv").read_text()
    (b / "2_students.csv").write_text(text.replace("Puddleworth,Zephyr,", "Puddleworth,Zara,"))
    stack.start_worker()
    assert roster_import(stack, a, "district-a").returncode == 0
    assert roster_import(stack, b, "district-b").returncode == 0
    again = roster_import(stack, a, "district-a")  # B's upload did not touch A's records
    assert (
        "2_students.csv: 40 accepted, 0 rejected, 40 unchanged, 0 updated, 0 new, 0" in again.stdout
    )
    wait_stored(stack, students=80, links=100, users=16, district_config=2)
    assert stack.stop_worker() == 0

    in_a, in_b = students(stack, "district-a"), students(stack, "district-b")
    assert in_a == expected_students(a)
    assert in_b == expected_students(b)
    assert in_a["20001"][0] == "Zephyr"
    assert in_b["20001"][0] == "Zara"
    assert stack.query("SELECT district_id FROM abacus.districts FINAL ORDER BY 1") == [
        ["district-a"],
        ["district-b"],
    ]


def test_district_config_is_required_first_and_validated(stack: Stack, tmp_path: Path) -> None:
    folder = copy_roster(EXAMPLES / "district", tmp_path / "upload")
    (folder / "district.toml").unlink()
    proc = roster_import(stack, folder, "new-district")
    assert proc.returncode == 1
    assert "no district config for 'new-district'" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    bad = tmp_path / "bad.toml"
    bad.write_text(CONFIG.read_text().replace("America/Chicago", "Mars/Olympus_Mons"))
    proc = roster_import(stack, folder, "new-district", "--config", str(bad))
    assert proc.returncode == 1
    assert proc.stderr.startswith(
        "abacus: bad.toml: timezone: unknown IANA time zone 'Mars/Olympus_Mons'"
    )
    assert topic_values(stack) == []
