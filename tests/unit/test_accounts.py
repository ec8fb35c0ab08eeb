"""Accounts: argon2id passwords, which credential signs in, sessions, CSRF, throttling,
reset tickets and audit entries (pure rules)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from abacus.accounts.credentials import Credential, effective_credential, roster_credential
from abacus.accounts.passwords import hash_password, new_password_problem, verify_password
from abacus.accounts.resets import ResetTicket, token_digest
from abacus.accounts.sessions import (
    Session,
    SessionRules,
    anonymous_csrf,
    check_csrf,
    credential_stamp,
    new_token,
)
from abacus.accounts.throttle import SlidingWindow
from abacus.audit import ACTIONS, AuditEntry


def test_passwords_are_argon2id_with_a_salt_and_verify_only_the_right_one() -> None:
    first, second = hash_password("Correct-Horse-9"), hash_password("Correct-Horse-9")
    assert first.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert first != second  # a fresh salt each time
    assert "Correct-Horse-9" not in first
    assert verify_password(first, "Correct-Horse-9")
    assert not verify_password(first, "correct-horse-9")
    assert not verify_password("", "Correct-Horse-9")  # no password set: never signs in
    assert not verify_password("not-a-phc-string", "Correct-Horse-9")


@pytest.mark.parametrize(
    ("plain", "confirm", "problem"),
    [
        ("long enough pass", "long enough pass", None),
        ("long enough pass", "long enough pas", "do not match"),
        ("short", "short", "at least 10"),
        ("a" * 12, "a" * 12, "more than one"),
        ("pwillow-abc", "pwillow-abc", None),
        ("PWillow@Example.org", "PWillow@Example.org", "your username, e-mail"),
    ],
)
def test_a_new_password_needs_length_and_is_not_the_users_own_name(
    plain: str, confirm: str, problem: str | None
) -> None:
    got = new_password_problem(plain, confirm=confirm, avoid=("pwillow", "pwillow@example.org"))
    assert (got is None) if problem is None else (problem in (got or ""))


class Hasher:
    """A counting stand-in for argon2 (the real one is tested above)."""

    def __init__(self) -> None:
        self.hashed: list[str] = []

    def hash(self, plain: str) -> str:
        self.hashed.append(plain)
        return f"H({plain})"

    @staticmethod
    def verify(stored: str, plain: str) -> bool:
        return stored == f"H({plain})"


def test_roster_credential_hashes_new_keeps_same_and_blank_passwords() -> None:
    h = Hasher()

    def cred(plain: str | None, published: dict[str, object] | None, at: int) -> Credential:
        return roster_credential(plain, published, at, hasher=h.hash, verifier=h.verify)

    new = cred("pw-one-long", None, 100)
    assert new == Credential("H(pw-one-long)", 100)
    published = {"password_hash": new.password_hash, "password_set_at": new.set_at}
    # the same password again: the published hash and its time, not a re-hash
    assert cred("pw-one-long", published, 200) == new
    # blank keeps what was published; blank for a new user is no credential
    assert cred(None, published, 300) == new
    assert cred("", None, 300) == Credential()
    # a different password is hashed and dated now
    assert cred("pw-two-long", published, 400) == Credential("H(pw-two-long)", 400)
    assert h.hashed == ["pw-one-long", "pw-two-long"]


def test_the_newer_credential_signs_in() -> None:
    roster = Credential("roster", 100)
    assert effective_credential(roster, None) == roster
    assert effective_credential(roster, Credential("portal", 150)).password_hash == "portal"
    # a roster password changed after the reset is newer and wins
    assert effective_credential(Credential("roster2", 200), Credential("portal", 150)) == (
        Credential("roster2", 200)
    )
    assert effective_credential(Credential(), Credential("portal", 5)).password_hash == "portal"


def test_sessions_end_when_idle_or_too_old() -> None:
    rules = SessionRules(idle_s=30, absolute_s=100)
    s = Session("d", "0101", credential_stamp("h"), created=0, last_seen=0)
    assert s.end_reason(29, rules) is None
    assert s.end_reason(30, rules) == "idle"
    s.last_seen = 90
    assert s.end_reason(99, rules) is None
    assert s.end_reason(100, rules) == "expired"
    assert len(new_token()) >= 43
    assert new_token() != new_token()
    assert s.csrf != Session("d", "0101", "x", 0, 0).csrf


def test_csrf_tokens_compare_in_constant_time_and_never_match_missing() -> None:
    key = b"k" * 32
    token = anonymous_csrf(key, "nonce-1")
    assert token == anonymous_csrf(key, "nonce-1")
    assert token != anonymous_csrf(key, "nonce-2")
    assert token != anonymous_csrf(b"j" * 32, "nonce-1")
    assert check_csrf(token, token)
    assert not check_csrf(token, token[:-1] + "0")
    assert not check_csrf(token, None)
    assert not check_csrf(None, None)
    assert not check_csrf("", "")


def test_sliding_window_throttles_per_key_until_failures_leave_the_window() -> None:
    w = SlidingWindow(limit=3, window_s=60)
    for t in (0, 10, 20):
        assert w.retry_after("a", t) is None
        w.fail("a", t)
    assert w.retry_after("a", 30) == pytest.approx(30)  # the oldest leaves at 60
    assert w.retry_after("b", 30) is None  # keys are independent
    assert w.retry_after("a", 60) is None
    w.fail("a", 61)
    assert w.retry_after("a", 62) == pytest.approx(8)  # failures at 10, 20, 61
    w.clear("a")
    assert w.retry_after("a", 62) is None


def test_sliding_window_memory_is_bounded() -> None:
    w = SlidingWindow(limit=2, window_s=10, max_keys=3)
    for i in range(3):
        w.fail(f"k{i}", 0)
    w.fail("late", 20)  # the full table drops keys whose failures left the window
    assert set(w._hits) == {"late"}


def test_reset_tickets_are_single_use_and_expire() -> None:
    t = ResetTicket("d", "0101", expires=100)
    assert t.problem(99) is None
    assert t.problem(100) == "expired"
    t.used = True
    assert t.problem(50) == "used"
    assert token_digest("abc") == token_digest("abc") != token_digest("abd")
    assert "abc" not in token_digest("abc")


def test_audit_entries_write_only_known_actions_and_read_any() -> None:
    at = datetime(2026, 12, 1, tzinfo=UTC)
    entry = AuditEntry(at, "d", "0101", "signin", "", "", "127.0.0.1")
    assert entry.row() == (at, "d", "0101", "signin", "", "", "127.0.0.1")
    assert entry.label == ACTIONS["signin"]
    later = AuditEntry(at, "d", "0101", "deletion.student")  # read back from a newer version
    assert later.label == "deletion.student"
    with pytest.raises(ValueError, match="unknown audit action"):
        later.row()
