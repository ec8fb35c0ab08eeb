"""The worker's portal state with a fake clock: sessions end when idle, too old, when the
user is deactivated or their password changes; reset tickets are single-use; throttles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from abacus.accounts.credentials import Credential
from abacus.accounts.sessions import SessionRules
from abacus.catalog import ROSTER_USERS
from abacus.settings import PortalSettings
from streams.portal.accounts import AccountDirectory
from streams.portal.sessions import ResetDesk, SessionManager, Throttles


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def user_row(employee: str, *, active: bool = True, version: int = 1, **fields: Any) -> list[Any]:
    doc = {
        "district_id": "d", "employee_id": employee, "username": f"u{employee}",
        "email": f"u{employee}@d.example", "first_name": "F", "last_name": "L", "user_type": 1,
        "buildings": ["B"], "sourced_id": "", "password_hash": "h1", "password_set_at": 10,
        "is_active": active, "import_id": "i", "version": version, "updated_at": None, **fields,
    }  # fmt: skip
    return [doc[c] for c in ROSTER_USERS.columns]


def setup() -> tuple[AccountDirectory, SessionManager, Clock]:
    accounts = AccountDirectory(store=None)  # type: ignore[arg-type]  # never loads here
    accounts.apply_rows([user_row("0101"), user_row("0102")])
    clock = Clock()
    return accounts, SessionManager(SessionRules(idle_s=60, absolute_s=300), accounts, clock), clock


def test_a_session_lives_while_used_and_ends_at_its_absolute_lifetime() -> None:
    accounts, sessions, clock = setup()
    token, _ = sessions.open(accounts.get("d", "0101"))  # type: ignore[arg-type]
    for _ in range(5):
        clock.now += 50
        assert sessions.lookup(token).account is not None  # each use resets the idle clock
    clock.now += 51  # 301 s after sign-in
    ended = sessions.lookup(token)
    assert (ended.ended, ended.account is not None) == ("expired", True)
    assert sessions.lookup(token).session is None  # gone


def test_idle_deactivated_and_new_password_end_sessions() -> None:
    accounts, sessions, clock = setup()
    idle, _ = sessions.open(accounts.get("d", "0101"))  # type: ignore[arg-type]
    clock.now += 60
    assert sessions.lookup(idle).ended == "idle"
    one, _ = sessions.open(accounts.get("d", "0101"))  # type: ignore[arg-type]
    two, _ = sessions.open(accounts.get("d", "0102"))  # type: ignore[arg-type]
    assert one != two
    accounts.apply_rows([user_row("0101", active=False, version=2)])
    assert sessions.lookup(one).ended == "deactivated"
    # an older record arriving late does not bring the user back
    accounts.apply_rows([user_row("0101", active=True, version=1)])
    assert accounts.active("d", "0101") is None
    accounts.apply_rows([user_row("0102", version=3, password_hash="h2", password_set_at=20)])
    assert sessions.lookup(two).ended == "new password"
    three, _ = sessions.open(accounts.get("d", "0102"))  # type: ignore[arg-type]
    accounts._portal[("d", "0102")] = Credential("h3", 30)  # a reset in the portal
    assert sessions.lookup(three).ended == "new password"
    assert len(sessions) == 0


def test_accounts_are_found_by_username_or_unique_email_in_their_district() -> None:
    accounts, _, _ = setup()
    assert accounts.find("d", " U0101 ").employee_id == "0101"  # type: ignore[union-attr]
    assert accounts.find("d", "u0102@D.example").employee_id == "0102"  # type: ignore[union-attr]
    assert accounts.find("other", "u0101") is None
    accounts.apply_rows([user_row("0103", email="u0102@d.example")])
    assert accounts.find("d", "u0102@d.example") is None  # shared e-mail: ambiguous
    accounts.apply_rows([user_row("0101", username="renamed", version=5)])
    assert accounts.find("d", "u0101") is None
    assert accounts.find("d", "renamed").employee_id == "0101"  # type: ignore[union-attr]


def test_reset_tickets_work_once_expire_and_a_new_one_voids_the_old() -> None:
    accounts, _, clock = setup()
    desk = ResetDesk(ttl_s=1800, clock=clock)
    account = accounts.get("d", "0101")
    first = desk.issue(account)  # type: ignore[arg-type]
    second = desk.issue(account)  # type: ignore[arg-type]
    assert desk.check(first) == (None, "unknown")
    assert desk.redeem(second) is not None
    assert desk.redeem(second) is None
    assert desk.check(second)[1] == "used"
    late = desk.issue(account)  # type: ignore[arg-type]
    clock.now += 1800
    assert desk.check(late)[1] == "expired"
    assert desk.redeem(late) is None


def test_throttles_count_per_user_and_per_address() -> None:
    clock = Clock()
    t = Throttles(
        PortalSettings(failures_per_user=2, failures_per_address=3, failure_window_s=60), clock
    )
    a, b = t.user_key("d", "Alice"), t.user_key("d", "bob")
    assert a == t.user_key("d", " alice ")
    t.fail(a, "1.1.1.1")
    t.fail(a, "1.1.1.1")
    assert t.retry_after(a, "2.2.2.2") == 60  # the user, from anywhere
    assert t.retry_after(b, "2.2.2.2") is None
    t.fail(b, "1.1.1.1")
    assert t.retry_after(b, "1.1.1.1") == 60  # the address, for anyone
    t.succeeded(b)
    assert t.retry_after(b, "2.2.2.2") is None
    clock.now += 60
    assert t.retry_after(a, "1.1.1.1") is None
    assert [t.reset_throttled(a, "3.3.3.3") for _ in range(4)] == [False, False, False, True]


@pytest.mark.parametrize(("public_url", "secure"), [("https://portal.example", True),
                                                     ("http://127.0.0.1:6066", False)])  # fmt: skip
def test_the_session_cookie_is_secure_whenever_the_public_url_is_https(
    public_url: str, secure: bool, tmp_path: Path
) -> None:
    from aiohttp import web

    from abacus.settings import AbacusSettings
    from streams.web.portal import Portal

    settings = AbacusSettings(home=tmp_path, web={"public_url": public_url})
    portal = Portal(settings, store=None, accounts=AccountDirectory(store=None), board=None,
                    districts={})  # type: ignore[arg-type]  # fmt: skip
    response = web.Response()
    portal.set_session_cookie(response, "token")
    cookie = response.cookies["abacus_session"]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert cookie["path"] == "/portal"
    assert bool(cookie["secure"]) is secure
