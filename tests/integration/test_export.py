"""Exports end to end: every cell against an independent truth, scopes, bad requests,
links, mail, concurrency. One worker for the module (starting one costs ~8 s)."""

from __future__ import annotations

import csv
import io
import json
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from abacus.domain.csvcells import EXPORT_HEADER
from abacus.embedded.broker import EmbeddedBroker
from abacus.kafka.broker_epoch import read_meta
from abacus.simulator import SimStudent, SimulationConfig, simulate
from tests.support.export_truth import expected_export, norm_grade, read_csv
from tests.support.mail import Mailbox
from tests.support.produce import produce_events, wait_consumed
from tests.support.stack import Stack, http_get, wait_until

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "district"
DISTRICT = "maple-valley"
TZ = "America/Chicago"
TODAY = datetime.now(UTC).astimezone(ZoneInfo(TZ)).date()
SPRING = (date(2026, 4, 20), date(2026, 5, 29), date(2025, 8, 15))  # start, end, year start


@pytest.fixture(scope="module")
def roster(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example roster, with a building user limited to one building and a name that
    a spreadsheet would run as a formula."""
    folder = tmp_path_factory.mktemp("roster") / "district"
    shutil.copytree(EXAMPLES, folder)
    users = (folder / "1_users.csv").read_text()
    users = users.replace(
        "0301,hsprout,hsprout@maplevalley.example,,Hazel,Sprout,"
        "Oak Elementary;Cedar Middle School,2",
        "0301,hsprout,hsprout@maplevalley.example,,Hazel,Sprout,Cedar Middle School,2",
    )
    (folder / "1_users.csv").write_text(users)
    students = (folder / "2_students.csv").read_text().splitlines()
    students[1] = students[1].replace(",Puddleworth,", ",=HYPERLINK(1),")
    (folder / "2_students.csv").write_text("\n".join(students) + "\n")
    return folder


@pytest.fixture(scope="module")
def events(roster: Path) -> list[dict[str, Any]]:
    students = [
        SimStudent(s["StudentID"], norm_grade(s["Grade"]))
        for s in read_csv(roster / "2_students.csv")
    ]
    spring = simulate(
        students,
        SimulationConfig(DISTRICT, TZ, SPRING[0], SPRING[1], seed=21, duplicate_share=0.05),
    )
    fall = simulate(
        students,
        SimulationConfig(
            DISTRICT, TZ, date(2026, 9, 8), date(2026, 10, 16), seed=22, duplicate_share=0.05
        ),
    )
    return spring + fall


@pytest.fixture(scope="module")
def stack(
    broker: EmbeddedBroker,
    tmp_path_factory: pytest.TempPathFactory,
    roster: Path,
    events: list[dict[str, Any]],
    mailbox: Mailbox,
) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("export-home")
    s = Stack(
        broker.bootstrap,
        home,
        extra_env={
            "ABACUS_SMTP__HOST": "127.0.0.1",
            "ABACUS_SMTP__PORT": str(mailbox.port),
            "ABACUS_SMTP__SENDER": "exports@abacus.test",
            "ABACUS_WEB__SIGNING_KEY": "k" * 32,
        },
    )
    s.start_worker()
    s.run("roster", "import", str(roster), "--district", DISTRICT)
    wait_until(
        lambda: s.metric_sum("abacus_roster_records_total") >= 40 + 8 + 1, 60, "roster consumed"
    )
    wait_consumed(s, produce_events(s, events, batch_share=0.3))
    yield s
    s.close()


def request(stack: Stack, requester: str, *args: str) -> tuple[int, dict[str, Any], str]:
    proc = stack.run(
        "export",
        "request",
        "--district",
        DISTRICT,
        "--requester",
        requester,
        "--wait",
        *args,
        check=False,
    )
    lines = proc.stdout.splitlines()
    status = json.loads(lines[1]) if len(lines) > 1 else {}
    return proc.returncode, status, proc.stderr


def read_export(path: str) -> tuple[list[str], list[list[str]]]:
    raw = Path(path).read_bytes()
    assert raw.endswith(b"\r\n")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8"), newline="")))
    return rows[0], rows[1:]


def scope_of(roster: Path, employee: str) -> set[str]:
    return {
        r["StudentID"]
        for r in read_csv(roster / "3_teacher_students.csv")
        if r["EmployeeID"] == employee
    }


def test_a_district_export_equals_the_truth_cell_by_cell(
    stack: Stack, roster: Path, events: list[dict[str, Any]]
) -> None:
    start, end, year_start = SPRING
    code, status, err = request(
        stack, "0401", "--product", "both", "--start", start.isoformat(), "--end", end.isoformat()
    )
    assert code == 0, err
    header, rows = read_export(status["path"])
    assert tuple(header) == EXPORT_HEADER
    expected = expected_export(roster, events, TZ, start, end, year_start, None, "both")
    assert len(rows) == len(expected) == 40
    for got, want in zip(rows, expected, strict=True):
        assert dict(zip(header, got, strict=True)) == dict(zip(header, want, strict=True))
    assert any(r[1] == "'=HYPERLINK(1)" for r in rows), "formula cells must be neutralised"
    manifest = json.loads(Path(status["manifest"]).read_text())
    assert manifest["rows"] == 40
    # Offsets name records only within a broker epoch (a new embedded broker starts at 0).
    assert manifest["broker_epoch"] == read_meta(stack.settings).epoch
    assert sum(manifest["events_offsets"].values()) > 0
    # Read from the rollups: the range's days closed, every late key written rebuilt.
    assert manifest["aggregates"] == "rollups"
    marks = manifest["rollup_watermark"]
    assert marks["closed_through"] >= manifest["range"]["end"]
    assert marks["late_keys_rebuilt"] >= marks["late_keys_written"]
    assert manifest["sha256"] == status["sha256"]
    assert manifest["bytes"] == Path(status["path"]).stat().st_size


def test_ytd_covers_school_year_start_to_yesterday_and_filters_by_product(
    stack: Stack, roster: Path, events: list[dict[str, Any]]
) -> None:
    code, status, err = request(stack, "0401", "--product", "g3plus", "--ytd")
    assert code == 0, err
    manifest = json.loads(Path(status["manifest"]).read_text())
    year_start = date(TODAY.year if date(TODAY.year, 8, 15) <= TODAY else TODAY.year - 1, 8, 15)
    yesterday = TODAY - timedelta(days=1)
    assert manifest["range"] == {
        "start": year_start.isoformat(),
        "end": yesterday.isoformat(),
        "school_year_start": year_start.isoformat(),
    }
    _, rows = read_export(status["path"])
    expected = expected_export(
        roster, events, TZ, year_start, yesterday, year_start, None, "g3plus"
    )
    assert rows == expected
    assert {r[9] for r in rows} == {"Grade 3+"}


@pytest.mark.parametrize(
    ("requester", "kind"), [("0101", "teacher"), ("0301", "building"), ("0501", "district")]
)
def test_each_role_sees_exactly_its_scope(
    stack: Stack, roster: Path, requester: str, kind: str
) -> None:
    code, status, err = request(stack, requester, "--product", "both", "--ytd")
    assert code == 0, err
    _, rows = read_export(status["path"])
    students = read_csv(roster / "2_students.csv")
    if kind == "teacher":
        want = scope_of(roster, requester)
    elif kind == "building":
        want = {s["StudentID"] for s in students if s["Building_Name"] == "Cedar Middle School"}
    else:
        want = {s["StudentID"] for s in students}
    assert {r[3] for r in rows} == want
    assert len(rows) == len(want)


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--district", "nowhere", "--requester", "0401", "--ytd"], "unknown district"),
        (["--district", DISTRICT, "--requester", "9999", "--ytd"], "not an active user"),
        (["--district", DISTRICT, "--requester", "0401", "--product", "g4", "--ytd"], "product"),
        (
            [
                "--district",
                DISTRICT,
                "--requester",
                "0401",
                "--start",
                "2026-10-02",
                "--end",
                "2026-10-01",
            ],
            "is after end",
        ),
        (
            [
                "--district",
                DISTRICT,
                "--requester",
                "0401",
                "--start",
                "2026-10-01",
                "--end",
                TODAY.isoformat(),
            ],
            "only previous days",
        ),
        (
            [
                "--district",
                DISTRICT,
                "--requester",
                "0401",
                "--start",
                "2026-08-01",
                "--end",
                "2026-09-01",
            ],
            "before the school year",
        ),
    ],
)
def test_bad_requests_fail_with_a_reason_and_write_nothing(
    stack: Stack, args: list[str], reason: str
) -> None:
    before = sorted(stack.settings.export_dir.rglob("*"))
    proc = stack.run("export", "request", *args, "--wait", check=False)
    assert proc.returncode == 1
    status = json.loads(proc.stdout.splitlines()[1])
    assert status["status"] == "failed"
    assert reason in status["reason"]
    assert reason in proc.stderr
    assert sorted(stack.settings.export_dir.rglob("*")) == before


def test_two_concurrent_requests_both_complete(stack: Stack) -> None:
    from abacus.kafka.export_requests import new_request_id, send_request, wait_status

    ids = [new_request_id(), new_request_id()]
    for rid, who in zip(ids, ("0101", "0401"), strict=True):
        send_request(
            stack.settings,
            {
                "request_id": rid,
                "district_id": DISTRICT,
                "requester": who,
                "product": "both",
                "range": "ytd",
            },
        )
    done = [wait_status(stack.settings, rid, 120) for rid in ids]
    assert [d["status"] for d in done] == ["completed", "completed"]
    assert done[0]["rows"] < done[1]["rows"] == 40


def test_mail_arrives_with_a_working_link_and_bad_links_are_refused(
    stack: Stack, mailbox: Mailbox
) -> None:
    code, status, err = request(stack, "0102", "--product", "both", "--ytd")
    assert code == 0, err
    wait_until(
        lambda: any(m["To"] == "rbirch@maplevalley.example" for m in mailbox.messages),
        30,
        "the export mail",
    )
    mail = next(m for m in mailbox.messages if m["To"] == "rbirch@maplevalley.example")
    body = mail.get_payload(decode=True).decode()
    # People get the portal page (sign-in required); the signed link stays the machine's
    portal = next(line for line in body.splitlines() if line.startswith("http"))
    assert portal == f"{stack.url}/portal/exports/{status['request_id']}"
    assert "Download PreK-2 and Grade 3+ Export File" in body
    assert status["link"] not in body
    link = status["link"]
    code_, content = http_get(link)
    assert code_ == 200
    assert content == Path(status["path"]).read_bytes()
    tampered = link.replace("by=0102", "by=0401")
    assert http_get(tampered)[0] == 403
    forged = link[:-4] + ("0000" if not link.endswith("0000") else "1111")
    assert http_get(forged)[0] == 403


def test_expired_links_are_refused_and_every_download_is_audited(
    broker: EmbeddedBroker, stack: Stack
) -> None:
    from abacus.export.links import sign_link

    code, status, _ = request(stack, "0401", "--product", "both", "--ytd")
    assert code == 0
    path = status["link"].split("?")[0].removeprefix(stack.url)
    expired = sign_link(
        stack.url, path, key=b"k" * 32, expires=int(time.time()) - 1, requester="0401"
    )
    assert http_get(expired)[0] == 403
    assert http_get(status["link"])[0] == 200
    assert stack.stop_worker() == 0
    audit = stack.query(
        "SELECT requester, action, detail FROM abacus.export_audit "
        "WHERE request_id = {r:String} ORDER BY at",
        r=status["request_id"],
    )
    assert audit == [["0401", "denied", "link expired"], ["0401", "download", ""]]
