"""Browser sessions, reset links and sign-in throttles, in the worker's memory.

One worker serves the portal: a restart signs everyone out and voids unused reset links
(both fail closed). Every lookup re-checks the account in the directory, so a user
deactivated by a roster import, or whose password changed, loses every open session at
their next request.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from abacus.accounts.account import Account
from abacus.accounts.resets import ResetTicket, token_digest
from abacus.accounts.sessions import Session, SessionRules, credential_stamp, new_token
from abacus.accounts.throttle import SlidingWindow
from abacus.settings import PortalSettings
from streams.portal.accounts import AccountDirectory

__all__ = ["Lookup", "ResetDesk", "SessionManager", "Throttles"]

_MAX_SESSIONS = 100_000


@dataclass(frozen=True)
class Lookup:
    """A cookie's session and account, or why there is none (``ended``: it just ended)."""

    session: Session | None = None
    account: Account | None = None
    ended: str | None = None


class SessionManager:
    """Server-side sessions keyed by their cookie token."""

    def __init__(
        self,
        rules: SessionRules,
        accounts: AccountDirectory,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.rules = rules
        self.accounts = accounts
        self.clock = clock
        self._sessions: dict[str, Session] = {}

    def open(self, account: Account) -> tuple[str, Session]:
        """A new session for ``account`` (always a new token: no fixation)."""
        if len(self._sessions) >= _MAX_SESSIONS:
            self.prune()
        now = self.clock()
        stamp = credential_stamp(self.accounts.credential(account).password_hash)
        session = Session(account.district_id, account.employee_id, stamp, now, now)
        token = new_token()
        self._sessions[token] = session
        return token, session

    def lookup(self, token: str | None) -> Lookup:
        """The live session of a cookie and its account; touching it resets the idle clock."""
        session = self._sessions.get(token or "")
        if session is None:
            return Lookup()
        now = self.clock()
        reason = session.end_reason(now, self.rules)
        account = self.accounts.get(session.district_id, session.employee_id)
        if reason is None and (account is None or not account.is_active):
            reason = "deactivated"
        if reason is None and account is not None:
            current = credential_stamp(self.accounts.credential(account).password_hash)
            if current != session.stamp:
                reason = "new password"
        if reason is not None:
            del self._sessions[token or ""]
            return Lookup(session, account, ended=reason)
        session.last_seen = now
        return Lookup(session, account)

    def end(self, token: str | None) -> Session | None:
        return self._sessions.pop(token or "", None)

    def end_all(self, district_id: str, employee_id: str) -> int:
        """End every session of one account (after a password reset); returns how many."""
        tokens = [
            t
            for t, s in self._sessions.items()
            if (s.district_id, s.employee_id) == (district_id, employee_id)
        ]
        for t in tokens:
            del self._sessions[t]
        return len(tokens)

    def prune(self) -> None:
        now = self.clock()
        for token, session in list(self._sessions.items()):
            if session.end_reason(now, self.rules) is not None:
                del self._sessions[token]

    def __len__(self) -> int:
        return len(self._sessions)


class ResetDesk:
    """Single-use reset tickets by their token's digest."""

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.time) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self._tickets: dict[str, ResetTicket] = {}

    def issue(self, account: Account) -> str:
        """A new token for ``account``; earlier unused tickets of the account stop working."""
        now = self.clock()
        for digest, ticket in list(self._tickets.items()):
            if ticket.problem(now) or (ticket.district_id, ticket.employee_id) == account.key:
                del self._tickets[digest]
        token = new_token()
        self._tickets[token_digest(token)] = ResetTicket(
            account.district_id, account.employee_id, now + self.ttl_s
        )
        return token

    def check(self, token: str) -> tuple[ResetTicket | None, str | None]:
        """The ticket of ``token`` and why it cannot be used ("unknown", "used", "expired")."""
        ticket = self._tickets.get(token_digest(token))
        if ticket is None:
            return None, "unknown"
        return ticket, ticket.problem(self.clock())

    def redeem(self, token: str) -> ResetTicket | None:
        """Use the ticket once; None when it is unknown, used or expired."""
        ticket, problem = self.check(token)
        if ticket is None or problem is not None:
            return None
        ticket.used = True
        return ticket


class Throttles:
    """Failed sign-ins per username (within a district) and per remote address."""

    def __init__(self, settings: PortalSettings, clock: Callable[[], float] = time.time) -> None:
        window = settings.failure_window_s
        self.users = SlidingWindow(settings.failures_per_user, window)
        self.addresses = SlidingWindow(settings.failures_per_address, window)
        # Reset mails: at most 3 per account and per address in the window (beyond it the
        # answer stays the same and no mail goes out).
        self.reset_users = SlidingWindow(3, window)
        self.reset_addresses = SlidingWindow(3 * settings.failures_per_user, window)
        self.clock = clock

    @staticmethod
    def user_key(district_id: str, name: str) -> str:
        return f"{district_id}|{name.strip().casefold()}"

    def retry_after(self, user: str, address: str) -> float | None:
        now = self.clock()
        waits = (self.users.retry_after(user, now), self.addresses.retry_after(address, now))
        known = [w for w in waits if w is not None]
        return max(known) if known else None

    def fail(self, user: str, address: str) -> None:
        now = self.clock()
        self.users.fail(user, now)
        self.addresses.fail(address, now)

    def succeeded(self, user: str) -> None:
        self.users.clear(user)

    def reset_throttled(self, user: str, address: str) -> bool:
        """Count a reset request; True when this one is over the limit."""
        now = self.clock()
        over = (
            self.reset_users.retry_after(user, now) is not None
            or self.reset_addresses.retry_after(address, now) is not None
        )
        self.reset_users.fail(user, now)
        self.reset_addresses.fail(address, now)
        return over
