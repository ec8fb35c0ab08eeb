"""The district portal in a real browser (Debian's Chromium through Playwright): the
export document's whole journey, every page checked with axe-core, keyboard-only use, and
the README's screenshots. One worker for the module."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from abacus.embedded.broker import EmbeddedBroker
from abacus.kafka.export_requests import new_request_id, send_request
from abacus.roster.validation import read_roster_dir, validate_roster
from abacus.simulator import SimStudent, SimulationConfig, simulate
from tests.support.browser import assert_accessible, chromium
from tests.support.export_truth import norm_grade, read_csv
from tests.support.mail import Mailbox, first_link
from tests.support.produce import produce_events, wait_consumed
from tests.support.stack import Stack, wait_until

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "district"
DISTRICT = "maple-valley"
TZ = "America/Chicago"
TEACHER = ("pwillow", "Willow-Pass-01", "pwillow@maplevalley.example")
ADMIN = ("aquill", "Example-Only-1")


def _dates() -> tuple[date, date]:
    """The last ten days before today (district time), within this school year."""
    today = datetime.now(UTC).astimezone(ZoneInfo(TZ)).date()
    yesterday = today - timedelta(days=1)
    year = yesterday.year if (yesterday.month, yesterday.day) >= (8, 15) else yesterday.year - 1
    return max(date(year, 8, 15), yesterday - timedelta(days=9)), yesterday


START, END = _dates()


@pytest.fixture(scope="module")
def roster(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example district, with a password for the teacher Pat Willow (0101)."""
    folder = tmp_path_factory.mktemp("portal-roster") / "district"
    shutil.copytree(EXAMPLES, folder)
    users = (folder / "1_users.csv").read_text()
    users = users.replace(
        f"0101,pwillow,{TEACHER[2]},,", f"0101,pwillow,{TEACHER[2]},{TEACHER[1]},"
    )
    (folder / "1_users.csv").write_text(users)
    return folder


@pytest.fixture(scope="module")
def stack(
    broker: EmbeddedBroker,
    tmp_path_factory: pytest.TempPathFactory,
    roster: Path,
    mailbox: Mailbox,
) -> Iterator[Stack]:
    s = Stack(
        broker.bootstrap,
        tmp_path_factory.mktemp("portal-home"),
        extra_env={**mailbox.env(), "ABACUS_WEB__SIGNING_KEY": "p" * 32},
    )
    s.start_worker()
    # 1. import a roster (the CLI; the admin's upload page is tested below)
    s.run("roster", "import", str(roster), "--district", DISTRICT)
    students = [
        SimStudent(r["StudentID"], norm_grade(r["Grade"]))
        for r in read_csv(roster / "2_students.csv")
    ]
    events = simulate(students, SimulationConfig(DISTRICT, TZ, START, END, seed=5))
    wait_consumed(s, produce_events(s, events))
    wait_until(lambda: s.metric_sum("abacus_roster_records_total") >= 99, 60, "roster stored")
    yield s
    s.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


def sign_in(page: Any, name: str, password: str) -> None:
    page.fill("#username", name)
    page.fill("#password", password)
    page.get_by_role("button", name="Sign in").click()


def test_the_whole_journey_from_roster_to_download(
    stack: Stack, browser: Any, mailbox: Mailbox
) -> None:
    portal = f"{stack.url}/portal"
    context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    page = context.new_page()
    # 2. sign in as a teacher
    page.goto(f"{portal}/")
    assert page.url.startswith(f"{portal}/sign-in")
    assert_accessible(page, "sign-in")
    sign_in(page, TEACHER[0], TEACHER[1])
    page.wait_for_url(f"{portal}/export")
    assert page.get_by_role("link", name="Student Data Export").get_attribute("aria-current") == (
        "page"
    )
    assert page.input_value("#end") == END.isoformat()  # the inputs go up to yesterday
    assert page.get_attribute("#end", "max") == END.isoformat()
    assert_accessible(page, "student-data-export")
    # 3. request an export, with one rejected attempt first: a range reaching today
    page.check("#product-both")
    page.check("#range-custom")
    page.fill("#start", START.isoformat())
    page.fill("#end", (END + timedelta(days=1)).isoformat())
    page.get_by_role("button", name="Export").click()
    error = page.locator("#end-error")
    assert "today or later" in error.inner_text()
    assert page.get_attribute("#end", "aria-invalid") == "true"
    assert "end-error" in (page.get_attribute("#end", "aria-describedby") or "")
    summary = page.locator(".error-summary a")
    assert summary.inner_text() in error.inner_text()
    assert summary.get_attribute("href") == "#end"  # the summary leads to the field
    assert_accessible(page, "student-data-export-error")
    # Two exports queued before ours, so the page shows it waiting and then finishing.
    for _ in range(2):
        send_request(
            stack.settings,
            {"request_id": new_request_id(), "district_id": DISTRICT, "requester": "0401",
             "product": "both", "range": "ytd"},
        )  # fmt: skip
    page.fill("#end", END.isoformat())
    page.get_by_role("button", name="Export").click()
    # 4. the confirmation and the live status
    page.wait_for_url(re.compile(r".*/portal/my-exports\?requested=exp-[0-9a-f]{16}$"))
    request_id = page.url.rsplit("=", 1)[1]
    confirmation = page.locator("#confirmation")
    assert "being generated" in confirmation.inner_text()
    assert "email with a link" in confirmation.inner_text()
    first = page.locator("#export-rows .tag").first.inner_text()
    assert first in ("Queued", "In progress")
    page.evaluate("window.__notReloaded = true")
    page.locator("#export-rows .tag.completed").first.wait_for(timeout=60_000)
    assert page.evaluate("window.__notReloaded") is True  # updated in place, no reload
    assert "All exports listed are finished" in page.locator("#export-summary").inner_text()
    assert_accessible(page, "my-exports")
    context.close()
    # 5. the mail, at a real SMTP server
    mail = mailbox.wait_for(TEACHER[2], "Student Data Export is ready")
    link = first_link(mail)
    assert link == f"{portal}/exports/{request_id}"
    # 6. follow the link signed out: sign in first, then the file
    fresh = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    page = fresh.new_page()
    page.goto(link)
    assert "/portal/sign-in?next=" in page.url
    sign_in(page, TEACHER[2], TEACHER[1])  # by e-mail this time
    page.wait_for_url(link)
    assert_accessible(page, "export-page")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download PreK-2 and Grade 3+ Export File").click()
    downloaded = Path(download_info.value.path()).read_bytes()
    fresh.close()
    # 7. byte for byte the CLI's export of the same request
    proc = stack.run(
        "export", "request", "--district", DISTRICT, "--requester", "0101", "--product",
        "both", "--start", START.isoformat(), "--end", END.isoformat(), "--wait",
    )  # fmt: skip
    cli_path = Path(proc.stdout.splitlines()[-1])
    assert downloaded == cli_path.read_bytes()
    assert downloaded.count(b"\r\n") - 1 == len(
        {r["StudentID"] for r in read_csv(EXAMPLES / "3_teacher_students.csv")
         if r["EmployeeID"] == "0101"}
    )  # fmt: skip


def test_admin_pages_forgot_and_error_pages_pass_axe(
    stack: Stack, browser: Any, roster: Path, tmp_path: Path, mailbox: Mailbox
) -> None:
    portal = f"{stack.url}/portal"
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(f"{portal}/forgot")
    assert_accessible(page, "forgot-password")
    page.fill("#username", "rbirch")
    page.get_by_role("button", name="Send the link").click()
    assert "Check your e-mail" in page.locator("main").inner_text()
    assert_accessible(page, "forgot-password-sent")
    page.goto(first_link(mailbox.wait_for("rbirch@maplevalley.example", "Set your password")))
    assert_accessible(page, "set-password")
    # a form whose CSRF token went missing gets its own page
    page.evaluate("document.querySelector('input[name=csrf]').remove()")
    page.fill("#password", "Birch-New-Pass-1")
    page.fill("#confirm", "Birch-New-Pass-1")
    page.get_by_role("button", name="Set password").click()
    assert "This form has expired" in page.locator("main").inner_text()
    assert_accessible(page, "csrf-error")
    page.goto(f"{portal}/reset/not-a-token")
    assert "not valid" in page.locator("main").inner_text()
    assert_accessible(page, "reset-link-not-valid")
    page.goto(f"{portal}/patterns")
    assert_accessible(page)
    page.goto(f"{portal}/sign-in")
    sign_in(page, *ADMIN)
    page.wait_for_url(f"{portal}/export")
    page.goto(f"{portal}/admin/exports")
    assert page.locator("#export-rows tr").count() >= 3  # the teacher's and 0401's
    assert_accessible(page, "district-exports")
    page.goto(f"{portal}/admin/audit")
    text = page.locator("table").inner_text()
    assert "Pat Willow" in text
    assert "export downloaded" in text
    assert "signed in" in text
    assert_accessible(page, "audit-log")
    # the roster upload: the same importer, the same per-line errors
    upload = tmp_path / "upload"
    shutil.copytree(roster, upload)
    students = (upload / "2_students.csv").read_text().splitlines()
    students.append(
        students[-1].replace(students[-1].split(",")[0], "29999", 1).replace(",8,", ",13,")
    )
    (upload / "2_students.csv").write_text("\n".join(students) + "\n")
    page.goto(f"{portal}/admin/roster")
    assert_accessible(page, "roster-upload")
    for n, name in enumerate(("1_users.csv", "2_students.csv", "3_teacher_students.csv"), 1):
        page.set_input_files(f"#file-{n}", str(upload / name))
    page.get_by_role("button", name="Upload and import").click()
    page.wait_for_load_state()
    expected = validate_roster(read_roster_dir(upload)).errors
    assert expected, "the upload must have a bad row"
    cells = [
        [c.inner_text() for c in row.locator("td").all()]
        for row in page.locator("table tbody tr").all()
    ]
    assert cells == [[e.file, str(e.line), e.column, e.value, e.reason] for e in expected]
    assert (
        "2_students.csv: 40 accepted, 1 rejected, 40 unchanged"
        in page.locator("[role=status]").inner_text()
    )
    assert_accessible(page, "roster-upload-result")
    # one file on its own, like `abacus roster import`: the other kinds stay as they are
    page.goto(f"{portal}/admin/roster")
    page.set_input_files("#file-3", str(upload / "3_teacher_students.csv"))
    page.get_by_role("button", name="Upload and import").click()
    page.wait_for_load_state()
    links = len((upload / "3_teacher_students.csv").read_text().splitlines()) - 1
    status = page.locator("[role=status]").inner_text()
    assert "1_users.csv: not uploaded; the published records are kept as they are" in status
    assert "2_students.csv: not uploaded; the published records are kept as they are" in status
    assert (
        f"3_teacher_students.csv: {links} accepted, 0 rejected, {links} unchanged, 0 updated,"
        " 0 new, 0 deactivated" in status
    )
    # the deletion pages up to the confirmation (nothing is deleted here)
    page.goto(f"{portal}/admin/deletions")
    assert_accessible(page)
    page.fill("#students", "20001\n20001")
    page.get_by_role("button", name="Continue").click()
    assert "a student is named twice" in page.locator("[role=alert]").inner_text()
    assert_accessible(page)
    page.fill("#students", "20001\n20002")
    page.get_by_role("button", name="Continue").click()
    assert "2 students" in page.locator("[role=status]").inner_text()
    assert_accessible(page)
    page.goto(f"{portal}/admin/deletions/del-0000000000000000")
    assert_accessible(page)
    page.goto(f"{portal}/nowhere")
    assert_accessible(page, "not-found")
    context.close()


def test_keyboard_only_sign_in_with_visible_focus(stack: Stack, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(f"{stack.url}/portal/sign-in")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    outlines = []
    for text in (None, TEACHER[0], TEACHER[1]):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            "(() => { const s = getComputedStyle(document.activeElement);"
            " return [document.activeElement.id, s.outlineStyle, s.outlineWidth, s.boxShadow]; })()"
        )
        outlines.append(focused)
        if text:
            page.keyboard.type(text)
    # brand link, then the two fields: each shows a 3px outline and the focus ring
    assert [o[0] for o in outlines[1:]] == ["username", "password"]
    assert all(o[1] == "solid" and o[2] == "3px" and o[3] != "none" for o in outlines[1:])
    page.keyboard.press("Enter")
    page.wait_for_url(f"{stack.url}/portal/export")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # the skip link
    assert page.evaluate("document.activeElement.id") == "main"
    context.close()
