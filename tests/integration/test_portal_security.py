"""The portal's refusals over HTTP, each with its status and its audit row: another user's
export, a post without its CSRF token, idle sessions, deactivated users, reused reset
links, throttled sign-ins; and passwords that survive roster re-uploads. One worker."""

from __future__ import annotations

import json
import re
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from abacus.embedded.broker import EmbeddedBroker
from abacus.privacy.receipt import check_signature
from tests.support.mail import Mailbox, first_link
from tests.support.portal_client import PortalClient
from tests.support.stack import Stack, wait_until

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "district"
D = "maple-valley"
PASSWORDS = {"0101": "Willow-Pass-01", "0103": "Acorn-Pass-003"}
IDLE_S = 4


@pytest.fixture(scope="module")
def roster(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sec-roster") / "district"
    shutil.copytree(EXAMPLES, folder)
    users = (folder / "1_users.csv").read_text()
    for employee, password in PASSWORDS.items():
        users = re.sub(rf"^({employee},[^,]*,[^,]*,)", rf"\g<1>{password}", users, flags=re.M)
    (folder / "1_users.csv").write_text(users)
    return folder


@pytest.fixture(scope="module")
def stack(
    broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory, roster: Path,
    mailbox: Mailbox,
) -> Iterator[Stack]:  # fmt: skip
    s = Stack(
        broker.bootstrap,
        tmp_path_factory.mktemp("sec-home"),
        extra_env={
            **mailbox.env(),
            "ABACUS_WEB__SIGNING_KEY": "s" * 32,
            "ABACUS_PORTAL__SESSION_IDLE_S": str(IDLE_S),
            "ABACUS_PORTAL__FAILURES_PER_USER": "3",
            "ABACUS_PORTAL__FAILURES_PER_ADDRESS": "10",
        },
    )
    s.start_worker()
    s.run("roster", "import", str(roster), "--district", D)
    wait_until(lambda: s.metric_sum("abacus_roster_records_total") >= 99, 60, "roster stored")
    yield s
    s.close()


def signed_in(stack: Stack, employee: str, name: str, password: str) -> PortalClient:
    client = PortalClient(stack.url)
    answer = client.sign_in(D, name, password)
    assert (answer.status, answer.location) == (303, "/portal/export"), answer.text[:400]
    assert client.session_cookie()
    return client


def test_sign_in_sets_a_locked_down_session_cookie(stack: Stack) -> None:
    client = PortalClient(stack.url)
    answer = client.sign_in(D, "pwillow", PASSWORDS["0101"])
    assert answer.status == 303
    cookie = next(c for c in answer.set_cookies if c.startswith("abacus_session="))
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Path=/portal" in cookie
    assert "Secure" not in cookie  # the public URL is http here; https sets it
    for name, password in (("pwillow", "wrong-password"), ("nobody", PASSWORDS["0101"])):
        refused = PortalClient(stack.url).sign_in(D, name, password)
        assert refused.status == 401
        assert "The username or password is not right" in refused.text


def test_another_users_export_is_refused_and_an_admin_may_download(stack: Stack) -> None:
    teacher = signed_in(stack, "0101", "pwillow", PASSWORDS["0101"])
    queued = teacher.form_post(
        "/portal/export", "/portal/export", {"product": "both", "range": "ytd"}
    )
    assert queued.status == 303
    request_id = queued.location.rsplit("=", 1)[1]
    wait_until(
        lambda: "Completed" in teacher.get("/portal/my-exports/rows").text, 60, "export done"
    )
    mine = teacher.get(f"/portal/exports/{request_id}/download")
    assert mine.status == 200
    other = signed_in(stack, "0103", "tacorn", PASSWORDS["0103"])
    for path in (f"/portal/exports/{request_id}", f"/portal/exports/{request_id}/download"):
        refused = other.get(path)
        assert refused.status == 403
        assert "belongs to someone else" in refused.text
    assert request_id not in other.get("/portal/my-exports").text
    assert other.get("/portal/exports/exp-0000000000000000").status == 404
    admin = signed_in(stack, "0501", "aquill", "Example-Only-1")
    assert admin.get(f"/portal/exports/{request_id}/download").text == mine.text
    assert other.get("/portal/admin/audit").status == 403  # admin pages: admins only


def test_a_post_without_its_csrf_token_is_refused(stack: Stack) -> None:
    teacher = signed_in(stack, "0101", "pwillow", PASSWORDS["0101"])
    before = teacher.get("/portal/my-exports").text.count("<tr>")
    refused = teacher.post("/portal/export", {"product": "both", "range": "ytd"})
    assert refused.status == 403
    assert "This form has expired" in refused.text
    wrong = teacher.post("/portal/export", {"csrf": "x" * 43, "product": "both", "range": "ytd"})
    assert wrong.status == 403
    assert teacher.get("/portal/my-exports").text.count("<tr>") == before  # nothing queued
    assert teacher.post("/portal/sign-out", {}).status == 403
    assert teacher.get("/portal/export").status == 200  # still signed in
    # before sign-in: a token from another browser does not match this one's nonce
    stranger = PortalClient(stack.url).get("/portal/sign-in").csrf
    forged = PortalClient(stack.url).post(
        "/portal/sign-in",
        {"csrf": stranger, "district": D, "username": "pwillow", "password": PASSWORDS["0101"]},
    )
    assert forged.status == 403


def test_an_idle_session_ends(stack: Stack) -> None:
    teacher = signed_in(stack, "0101", "pwillow", PASSWORDS["0101"])
    assert teacher.get("/portal/my-exports").status == 200
    time.sleep(IDLE_S + 0.5)
    # the exports list refreshing itself (htmx) is sent to sign-in as a whole page
    polled = teacher.get(
        "/portal/my-exports/rows",
        {"HX-Request": "true", "HX-Current-URL": f"{stack.url}/portal/my-exports"},
    )
    assert polled.status == 200
    assert polled.headers["HX-Redirect"] == "/portal/sign-in?next=%2Fportal%2Fmy-exports"
    assert "<tbody" not in polled.text
    teacher = signed_in(stack, "0101", "pwillow", PASSWORDS["0101"])
    assert teacher.get("/portal/my-exports").status == 200
    time.sleep(IDLE_S + 0.5)
    ended = teacher.get("/portal/my-exports")
    assert ended.status == 303
    assert ended.location.startswith("/portal/sign-in?next=")
    assert teacher.get("/portal/my-exports").status == 303  # the session is gone for good


def test_a_user_deactivated_by_a_roster_import_loses_open_sessions(
    stack: Stack, roster: Path, tmp_path: Path
) -> None:
    acorn = signed_in(stack, "0103", "tacorn", PASSWORDS["0103"])
    without = tmp_path / "without-0103"
    shutil.copytree(roster, without)
    for name in ("1_users.csv", "3_teacher_students.csv"):
        lines = (without / name).read_text().splitlines()
        (without / name).write_text(
            "\n".join(ln for ln in lines if not ln.startswith("0103,")) + "\n"
        )
    done = threading.Event()

    def reimport() -> None:
        stack.run("roster", "import", str(without), "--district", D)
        done.set()

    threading.Thread(target=reimport, daemon=True).start()
    # Keep the session busy (never idle) until the import takes it away.
    ended = wait_until(
        lambda: acorn.get("/portal/my-exports").status == 303, 60, "the session to end", 0.5
    )
    assert ended
    assert done.wait(30)
    refused = PortalClient(stack.url).sign_in(D, "tacorn", PASSWORDS["0103"])
    assert refused.status == 401
    shutil.rmtree(roster)
    shutil.copytree(without, roster)  # the district's current roster, for the tests below


def test_a_reset_link_works_once_and_the_password_survives_reuploads(
    stack: Stack, roster: Path, mailbox: Mailbox
) -> None:
    anonymous = PortalClient(stack.url)
    known = anonymous.form_post(
        "/portal/forgot", "/portal/forgot", {"district": D, "username": "rbirch"}
    )
    unknown = anonymous.form_post(
        "/portal/forgot", "/portal/forgot", {"district": D, "username": "nobody"}
    )
    assert known.status == unknown.status == 200
    same = re.compile(r'name="(csrf|username)" value="[^"]*"')
    assert same.sub("", known.text) == same.sub("", unknown.text)  # no account oracle
    assert "If an account matches" in known.text
    link = first_link(mailbox.wait_for("rbirch@maplevalley.example", "Set your password"))
    token_path = link.removeprefix(stack.url)
    assert re.fullmatch(r"/portal/reset/[A-Za-z0-9_-]{43}", token_path)
    browser = PortalClient(stack.url)
    page = browser.get(token_path)
    assert page.status == 200
    mismatch = browser.post(
        token_path, {"csrf": page.csrf, "password": "Birch-New-Pass-1", "confirm": "x"}
    )
    assert mismatch.status == 400
    assert "do not match" in mismatch.text
    done = browser.post(
        token_path,
        {"csrf": page.csrf, "password": "Birch-New-Pass-1", "confirm": "Birch-New-Pass-1"},
    )
    assert (done.status, done.location) == (303, f"/portal/sign-in?notice=reset&district={D}")
    reused = browser.post(
        token_path, {"csrf": page.csrf, "password": "Another-Pass-22", "confirm": "Another-Pass-22"}
    )
    assert reused.status == 410
    assert "already used" in reused.text
    assert browser.get(token_path).status == 410
    signed_in(stack, "0102", "rbirch", "Birch-New-Pass-1")
    # a re-upload (blank password for rbirch, the same one for pwillow) changes nothing
    out = stack.run("roster", "import", str(roster), "--district", D).stdout
    assert re.search(r"1_users\.csv: 7 accepted, 0 rejected, 7 unchanged, 0 updated", out), out
    time.sleep(1.0)
    signed_in(stack, "0102", "rbirch", "Birch-New-Pass-1")
    signed_in(stack, "0101", "pwillow", PASSWORDS["0101"])


def test_an_admin_deletes_a_student_with_a_confirmation_then_downloads_the_receipt(
    stack: Stack,
) -> None:
    teacher = signed_in(stack, "0101", "pwillow", PASSWORDS["0101"])
    assert teacher.get("/portal/admin/deletions").status == 403  # admins only
    admin = signed_in(stack, "0501", "aquill", "Example-Only-1")
    form = "/portal/admin/deletions"
    bad = admin.form_post(form, form, {"students": "20001\n20001"})
    assert bad.status == 400
    assert "a student is named twice" in bad.text
    assert 'aria-invalid="true"' in bad.text
    confirm = admin.form_post(form, form, {"students": "StudentID\n20001\n", "reason": "parent"})
    assert confirm.status == 200
    assert "Confirm the deletion" in confirm.text
    assert "1 student</strong>" in confirm.text
    request_id = re.search(r'name="request_id" value="(del-[0-9a-f]+)"', confirm.text)
    assert request_id is not None
    assert "Delete student data" in confirm.text  # the navigation pane's link
    fields = {
        "students": "20001",
        "reason": "parent",
        "request_id": request_id[1],
        "confirm": "yes",
    }
    sent = admin.form_post(form, form, fields)
    assert (sent.status, sent.location) == (303, f"/portal/admin/deletions/{request_id[1]}")
    page = sent.location
    wait_until(lambda: "completed" in admin.get(page).text, 120, "deletion completed")
    receipt = admin.get(f"{page}/receipt")
    assert receipt.status == 200
    assert f'filename="{request_id[1]}.json"' in receipt.headers["Content-Disposition"]
    doc = json.loads(receipt.text)
    check_signature(doc, b"s" * 32)
    assert doc["request"]["students"] == ["20001"]
    assert doc["request"]["requester"] == "0501"
    checked = {t["table"]: t["result"] for t in doc["tables"]}
    assert {"events", "daily_facts", "roster_students", "audit_log"} <= set(checked)
    assert set(checked.values()) == {0}
    teacher = signed_in(stack, "0101", "pwillow", PASSWORDS["0101"])  # the first one idled
    assert teacher.get(f"{page}/receipt").status == 403
    assert admin.get("/portal/admin/deletions/del-0000000000000000").status == 200  # queued
    assert admin.get("/portal/admin/deletions/del-0000000000000000/receipt").status == 404


def test_failed_sign_ins_are_throttled_per_username_then_per_address(stack: Stack) -> None:
    client = PortalClient(stack.url)
    for _ in range(3):
        assert client.sign_in(D, "pwillow", "not-the-password").status == 401
    throttled = client.sign_in(D, "pwillow", PASSWORDS["0101"])  # right, but too late
    assert throttled.status == 429
    assert "Too many failed sign-ins" in throttled.text
    assert not PortalClient(stack.url).sign_in(D, "pwillow", PASSWORDS["0101"]).location
    # other names from the same address: its limit (10 in this module, counting the
    # earlier tests' failures) stops every name, even with the right password
    statuses = [client.sign_in(D, f"ghost-{n}", "whatever-pass").status for n in range(10)]
    assert 429 in statuses
    assert set(statuses[: statuses.index(429)]) <= {401}
    assert client.sign_in(D, "aquill", "Example-Only-1").status == 429


def test_each_refusal_and_sign_in_is_in_the_audit_log(stack: Stack) -> None:
    assert stack.stop_worker() == 0
    rows = stack.query(
        "SELECT actor, action, target, detail FROM abacus.audit_log "
        "WHERE district_id = {d:String} ORDER BY at",
        d=D,
    )
    seen = {(r[0], r[1], r[3]) for r in rows}
    expected = {
        ("0101", "signin.failed", "wrong password"),
        ("", "signin.failed", "no active user by that name"),  # "nobody", "tacorn"
        ("0101", "csrf.denied", "/portal/export"),
        ("0101", "session.ended", "idle"),
        ("0103", "session.ended", "deactivated"),
        ("0102", "reset.requested", ""),
        ("", "reset.requested", "no active user with an e-mail by that name"),
        ("0102", "reset.completed", "0 open session(s) ended"),
        ("0102", "reset.denied", "used"),
        ("0101", "signin.throttled", "127.0.0.1"),
        ("0501", "signin.throttled", "127.0.0.1"),
    }
    assert expected <= seen, expected - seen
    denied = [r for r in rows if r[1] == "download.denied"]
    assert [(r[0], r[3]) for r in denied] == [("0103", "portal: not the requester")] * 2
    downloads = [(r[0], r[3]) for r in rows if r[1] == "download"]
    assert downloads == [("0101", "portal"), ("0501", "portal")]
    assert {r[2] for r in denied} == {r[2] for r in rows if r[1] == "download"}
    # no password anywhere: not in the audit log, not in the roster table
    every = stack.query("SELECT actor, target, detail FROM abacus.audit_log")
    text = repr(every)
    for password in (*PASSWORDS.values(), "Example-Only-1", "Birch-New-Pass-1", "not-the-password"):
        assert password not in text
    # nor a typed name that matched no one (often a password typed into the wrong box)
    for typed in ("nobody", "ghost-", "tacorn"):
        assert typed not in text
    hashes = stack.query(
        "SELECT employee_id, password_hash FROM abacus.roster_users FINAL ORDER BY employee_id"
    )
    by_id = dict((r[0], r[1]) for r in hashes)
    assert by_id["0101"].startswith("$argon2id$v=19$")
    assert by_id["0102"] == ""  # rbirch's password lives in portal_credentials
    portal = stack.query("SELECT employee_id, password_hash FROM abacus.portal_credentials FINAL")
    assert [r[0] for r in portal] == ["0102"]
    assert portal[0][1].startswith("$argon2id$")
