"""Through the portal, nobody reads beyond their scope: a teacher's, a building user's and a
district user's exports hold exactly their students; no one but the requester and their
district's admin opens an export, and two districts with the same Employee_IDs never see
each other's. A user deactivated by a roster import loses their portal session, signed
links and reset links at once; a demoted admin loses the admin pages at once. Every answer
to Forgot password looks the same. No password, e-mail or student in the worker's log.
One worker, two districts."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from abacus.embedded.broker import EmbeddedBroker
from tests.support.export_truth import read_csv
from tests.support.mail import Mailbox, first_link
from tests.support.portal_client import Answer, PortalClient
from tests.support.stack import Stack, http_get, wait_until

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "district"
D, OTHER = "maple-valley", "birch-falls"
# employee -> (username, password); the same in both districts (the same Employee_IDs too)
STAFF = {
    "0101": ("pwillow", "Willow-Scope-01"),  # teacher
    "0102": ("rbirch", "Birch-Scope-002"),  # teacher, deactivated below
    "0301": ("hsprout", "Sprout-Scope-03"),  # building user (Cedar Middle School only here)
    "0401": ("dgrove", "Grove-Scope-004"),  # district user (User_Type 3: not an admin)
    "0501": ("aquill", "Example-Only-1"),  # district admin (User_Type 4)
}


def _roster(folder: Path, district: str, student_prefix: str) -> Path:
    shutil.copytree(EXAMPLES, folder)
    users = (folder / "1_users.csv").read_text()
    users = users.replace(
        "hsprout@maplevalley.example,,Hazel,Sprout,Oak Elementary;Cedar Middle School,2",
        "hsprout@maplevalley.example,,Hazel,Sprout,Cedar Middle School,2",
    )
    for employee, (_, password) in STAFF.items():
        users = re.sub(rf"^({employee},[^,]*,[^,]*,)[^,]*", rf"\g<1>{password}", users, flags=re.M)
    (folder / "1_users.csv").write_text(users)
    for name in ("2_students.csv", "3_teacher_students.csv"):  # other students, other ids
        text = (folder / name).read_text()
        (folder / name).write_text(re.sub(r"\b2(\d{4})\b", rf"{student_prefix}\1", text))
    config = (folder / "district.toml").read_text()
    config = config.replace('district_id = "maple-valley"', f'district_id = "{district}"')
    (folder / "district.toml").write_text(config.replace("Maple Valley", district.title()))
    return folder


@pytest.fixture(scope="module")
def rosters(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("scope-rosters")
    return {D: _roster(base / D, D, "2"), OTHER: _roster(base / OTHER, OTHER, "7")}


@pytest.fixture(scope="module")
def stack(
    broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory,
    rosters: dict[str, Path], mailbox: Mailbox,
) -> Iterator[Stack]:  # fmt: skip
    s = Stack(
        broker.bootstrap,
        tmp_path_factory.mktemp("scope-home"),
        extra_env={**mailbox.env(), "ABACUS_WEB__SIGNING_KEY": "k" * 32},
    )
    s.start_worker()
    for district, folder in rosters.items():
        s.run("roster", "import", str(folder), "--district", district)
    wait_until(lambda: s.metric_sum("abacus_roster_records_total") >= 2 * 99, 60, "rosters")
    yield s
    s.close()


def signed_in(stack: Stack, employee: str, district: str = D) -> PortalClient:
    name, password = STAFF[employee]
    client = PortalClient(stack.url)
    answer = client.sign_in(district, name, password)
    assert (answer.status, answer.location) == (303, "/portal/export"), answer.text[:400]
    return client


def exported(client: PortalClient) -> tuple[str, Answer]:
    """Request a YTD export of both products; wait for it; download it."""
    queued = client.form_post(
        "/portal/export", "/portal/export", {"product": "both", "range": "ytd"}
    )
    assert queued.status == 303, queued.text[:400]
    request_id = queued.location.rsplit("=", 1)[1]

    def done() -> bool:
        page = client.get(f"/portal/exports/{request_id}").text
        assert "Failed" not in page, page
        return "Completed" in page

    wait_until(done, 60, f"export {request_id}")
    answer = client.get(f"/portal/exports/{request_id}/download")
    assert answer.status == 200, answer.text[:400]
    return request_id, answer


def students_in(answer: Answer) -> list[str]:
    rows = list(csv.reader(io.StringIO(answer.text, newline="")))
    column = rows[0].index("student_information_number")
    return [r[column] for r in rows[1:]]


def test_each_role_exports_exactly_its_scope_through_the_portal(
    stack: Stack, rosters: dict[str, Path]
) -> None:
    folder = rosters[D]
    students = read_csv(folder / "2_students.csv")
    links = read_csv(folder / "3_teacher_students.csv")
    want = {
        "0101": {r["StudentID"] for r in links if r["EmployeeID"] == "0101"},
        "0301": {s["StudentID"] for s in students if s["Building_Name"] == "Cedar Middle School"},
        "0401": {s["StudentID"] for s in students},
    }
    assert len(want["0101"]) < len(want["0301"]) < len(want["0401"])  # three real scopes
    for employee, expected in want.items():
        _, answer = exported(signed_in(stack, employee))
        got = students_in(answer)
        assert sorted(got) == sorted(expected), employee
    # the other district's teacher with the same Employee_ID: their own students only
    other_links = read_csv(rosters[OTHER] / "3_teacher_students.csv")
    _, answer = exported(signed_in(stack, "0101", OTHER))
    got = set(students_in(answer))
    assert got == {r["StudentID"] for r in other_links if r["EmployeeID"] == "0101"}
    assert all(s.startswith("7") for s in got)


def test_only_the_requester_and_their_districts_admin_open_an_export(stack: Stack) -> None:
    teacher = signed_in(stack, "0101")
    request_id, mine = exported(teacher)
    page, file = f"/portal/exports/{request_id}", f"/portal/exports/{request_id}/download"
    # the same district, wider scopes but not admins: refused, and not listed
    for employee in ("0102", "0301", "0401"):
        other = signed_in(stack, employee)
        assert [other.get(p).status for p in (page, file)] == [403, 403], employee
        assert request_id not in other.get("/portal/my-exports").text
        assert other.get("/portal/admin/exports").status == 403
    admin = signed_in(stack, "0501")
    assert admin.get(file).text == mine.text
    assert request_id in admin.get("/portal/admin/exports").text
    # the other district: the same Employee_IDs (teacher and admin) know nothing of it
    for employee in ("0101", "0501"):
        stranger = signed_in(stack, employee, OTHER)
        assert [stranger.get(p).status for p in (page, file)] == [404, 404], employee
        assert request_id not in stranger.get("/portal/my-exports").text
    other_admin = signed_in(stack, "0501", OTHER)
    assert request_id not in other_admin.get("/portal/admin/exports").text
    assert request_id not in other_admin.get("/portal/admin/audit").text


def forgot(district: str, name: str, stack: Stack) -> Answer:
    return PortalClient(stack.url).form_post(
        "/portal/forgot", "/portal/forgot", {"district": district, "username": name}
    )


def same_page(answer: Answer) -> tuple[int, str, list[str]]:
    """What a visitor sees, less the two values that differ by design (the CSRF token and
    the name they typed, echoed back)."""
    text = re.sub(r'name="(csrf|username)" value="[^"]*"', "", answer.text)
    cookies = sorted(c.split("=", 1)[0] for c in answer.set_cookies)
    return answer.status, text, cookies


def test_a_deactivated_user_loses_session_links_and_reset_links_at_once(
    stack: Stack, rosters: dict[str, Path], mailbox: Mailbox, tmp_path: Path
) -> None:
    # rbirch (0102) holds a session, a signed link (the machine interface: the CLI's
    # status) and an unused reset link; aquill (0501) an admin session
    birch = signed_in(stack, "0102")
    admin = signed_in(stack, "0501")
    assert admin.get("/portal/admin/audit").status == 200
    proc = stack.run(
        "export", "request", "--district", D, "--requester", "0102", "--product", "both",
        "--ytd", "--wait",
    )  # fmt: skip
    status = json.loads(proc.stdout.splitlines()[1])
    link = status["link"]
    assert http_get(link)[0] == 200
    assert forgot(D, "rbirch", stack).status == 200
    reset_link = first_link(mailbox.wait_for("rbirch@maplevalley.example", "Set your password"))
    mails_before = mailbox.count("rbirch@maplevalley.example")
    # the district re-imports its roster: rbirch gone, aquill now a district user (3)
    changed = tmp_path / "changed"
    shutil.copytree(rosters[D], changed)
    users = [ln for ln in (changed / "1_users.csv").read_text().splitlines()
             if not ln.startswith("0102,")]  # fmt: skip
    users = [re.sub(r",4$", ",3", ln) if ln.startswith("0501,") else ln for ln in users]
    (changed / "1_users.csv").write_text("\n".join(users) + "\n")
    links = (changed / "3_teacher_students.csv").read_text().splitlines()
    (changed / "3_teacher_students.csv").write_text(
        "\n".join(ln for ln in links if not ln.startswith("0102,")) + "\n"
    )
    done = threading.Event()
    threading.Thread(
        target=lambda: (stack.run("roster", "import", str(changed), "--district", D), done.set()),
        daemon=True,
    ).start()
    # both sessions stay busy (never idle) until the import takes them away
    wait_until(lambda: birch.get("/portal/my-exports").status == 303, 60, "birch signed out")
    assert done.wait(60)
    assert admin.get("/portal/export").status == 200  # still signed in, as a district user
    assert admin.get("/portal/admin/audit").status == 403
    assert admin.get("/portal/admin/exports").status == 403
    assert http_get(link)[0] == 403  # the signed link died with the account
    reset_path = urllib.parse.urlsplit(reset_link).path
    page = PortalClient(stack.url)
    assert page.get(reset_path).status == 410
    token = page.get("/portal/forgot").csrf  # a valid form token: the post is refused anyway
    refused = page.post(
        reset_path, {"csrf": token, "password": "Birch-Again-0001", "confirm": "Birch-Again-0001"}
    )
    assert refused.status == 410
    assert PortalClient(stack.url).sign_in(D, "rbirch", STAFF["0102"][1]).status == 401
    # and Forgot password answers them as it answers anyone, without a mail
    assert same_page(forgot(D, "rbirch", stack)) == same_page(forgot(D, "nobody-here", stack))
    assert mailbox.count("rbirch@maplevalley.example") == mails_before


def test_every_answer_to_forgot_password_looks_the_same(stack: Stack, mailbox: Mailbox) -> None:
    """Known by username or by e-mail, unknown, deactivated, throttled (a 4th request for
    one account, by name or e-mail alike): one status, one page, the same cookies; mail only
    where it is due."""
    before = mailbox.count("pwillow@maplevalley.example")
    answers = {
        "known": forgot(D, "pwillow", stack),
        "by e-mail": forgot(D, "PWillow@maplevalley.example", stack),
        "unknown": forgot(D, "nobody-at-all", stack),
        "deactivated": forgot(D, "rbirch", stack),
        "throttled": [forgot(D, "pwillow", stack) for _ in range(3)][-1],
    }
    pages = {label: same_page(a) for label, a in answers.items()}
    assert pages["known"][0] == 200
    assert "If an account matches" in pages["known"][1]
    for label, page in pages.items():
        assert page == pages["known"], label
    # known, by e-mail, then the 3rd by name; the 4th and 5th are throttled, silently
    wait_until(lambda: mailbox.count("pwillow@maplevalley.example") >= before + 3, 30, "mails")
    time.sleep(1.0)  # a 4th mail would have been sent by now (the first three were)
    assert mailbox.count("pwillow@maplevalley.example") == before + 3


def test_the_audit_trail_has_the_refusals_and_the_log_no_password_email_or_student(
    stack: Stack, rosters: dict[str, Path]
) -> None:
    assert stack.stop_worker() == 0
    rows = {
        tuple(r)
        for r in stack.query(
            "SELECT actor, action, detail FROM abacus.audit_log WHERE district_id = {d:String}",
            d=D,
        )
    }
    assert ("0102", "session.ended", "deactivated") in rows
    assert ("0102", "download.denied", "requester no longer active") in rows
    assert ("0102", "reset.denied", "deactivated") in rows
    denied = {r[0] for r in rows if r[1] == "download.denied" and r[2].startswith("portal")}
    assert denied == {"0102", "0301", "0401"}  # the same district's refused users
    log = (stack.home / "worker.log").read_text(errors="replace")
    assert "staff account(s) loaded" in log  # the worker's own lines are in this file
    users = read_csv(rosters[D] / "1_users.csv")
    for value in (*(p for _, p in STAFF.values()), "Birch-Again-0001"):
        assert value not in log, "a password in the worker's log"
    for user in users:
        assert user["Email"].casefold() not in log.casefold(), "an e-mail in the worker's log"
    for folder in rosters.values():
        for student in read_csv(folder / "2_students.csv"):
            # not inside a port, an address, a member id or another number
            pattern = rf"(?<![\w:.-]){student['StudentID']}(?!\w)"
            assert not re.search(pattern, log), "a student id in the worker's log"
            for name in (student["Last"], student["First"]):
                assert not re.search(rf"\b{re.escape(name)}\b", log), "a student's name"


@pytest.mark.parametrize("refused_at", ["RCPT", "DATA"])
def test_a_refused_mail_names_no_recipient_in_its_error(refused_at: str) -> None:
    """The error goes to the worker's log: a server that refuses the address, and echoes
    it in its reply, gets the reply's code in the error, never the address."""
    from aiosmtpd.controller import Controller

    from abacus.embedded.broker import free_port
    from abacus.errors import AbacusError
    from abacus.mail import ResetMail, send_reset_mail
    from abacus.settings import SmtpSettings

    to = "rbirch@maplevalley.example"

    class Refusing:
        async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                              options: Any) -> str:  # fmt: skip
            if refused_at == "RCPT":
                return f"550 5.1.1 <{address}>: Recipient address rejected"
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            return f"554 5.7.1 mail for {envelope.rcpt_tos[0]} refused"

    port = free_port()
    controller = Controller(Refusing(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        smtp = SmtpSettings(host="127.0.0.1", port=port)
        with pytest.raises(AbacusError) as caught:
            send_reset_mail(smtp, ResetMail(to, "Maple Valley", "http://x/portal/reset/t", 30))
    finally:
        controller.stop()
    message = str(caught.value)
    assert "could not send the reset mail" in message
    assert ("550" if refused_at == "RCPT" else "554") in message
    assert "rbirch" not in message
    assert "maplevalley" not in message
