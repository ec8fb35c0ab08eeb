"""Browser sessions and CSRF tokens: what a session holds and when it ends (pure).

A session is a random token (the cookie) mapped on the server to who signed in, a CSRF
token for its forms, and two clocks: idle (since the last request) and absolute (since
sign-in). It also remembers the credential it was opened with: a new password (a reset, a
roster change) ends every session opened with the old one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

__all__ = [
    "Session",
    "SessionRules",
    "anonymous_csrf",
    "check_csrf",
    "credential_stamp",
    "new_token",
]


def new_token() -> str:
    """A fresh unguessable token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def credential_stamp(password_hash: str) -> str:
    """A short fingerprint of a password hash, kept in the session instead of the hash."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class SessionRules:
    """Idle timeout and absolute lifetime, in seconds."""

    idle_s: float = 30 * 60
    absolute_s: float = 12 * 3600


@dataclass(slots=True)
class Session:
    """One signed-in browser."""

    district_id: str
    employee_id: str
    stamp: str  # credential_stamp of the password used to sign in
    created: float
    last_seen: float
    csrf: str = field(default_factory=new_token)

    def end_reason(self, now: float, rules: SessionRules) -> str | None:
        """Why the session is over at ``now`` ("idle", "expired"), or None while it lasts."""
        if now - self.created >= rules.absolute_s:
            return "expired"
        if now - self.last_seen >= rules.idle_s:
            return "idle"
        return None


def anonymous_csrf(key: bytes, nonce: str) -> str:
    """The CSRF token of a form shown before sign-in: an HMAC of the browser's nonce cookie
    (signed double-submit), so nothing is kept on the server for anonymous visitors."""
    return hmac.new(key, f"csrf\n{nonce}".encode(), hashlib.sha256).hexdigest()


def check_csrf(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison; a missing token on either side never matches."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())
