"""Staff accounts in the worker's memory: loaded from the store at start, kept current by
the roster consumer, so a request checks a user's active state with a dict lookup."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from abacus.accounts.account import Account
from abacus.accounts.credentials import Credential, effective_credential
from abacus.accounts.passwords import hash_password
from abacus.store.store import Store

__all__ = ["AccountDirectory"]

log = logging.getLogger(__name__)


class AccountDirectory:
    """Every district's staff (active or not) and the credential in force for each."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._accounts: dict[tuple[str, str], Account] = {}
        self._names: dict[tuple[str, str], tuple[str, str]] = {}  # (district, folded) -> key
        self._emails: dict[tuple[str, str], set[tuple[str, str]]] = {}
        self._portal: dict[tuple[str, str], Credential] = {}

    def load(self) -> None:
        """At worker start (blocking): every account and portal password in the store."""
        accounts, portal = self.store.load_accounts()
        self._portal.update(portal)
        self._apply(accounts)
        log.info("%d staff account(s) loaded", len(self._accounts))

    def apply_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        """`roster_users` rows the roster consumer just stored (catalog column order)."""
        self._apply(Account.from_row(row) for row in rows)

    def _apply(self, accounts: Iterable[Account]) -> None:
        for account in accounts:
            before = self._accounts.get(account.key)
            if before is not None and before.version > account.version:
                continue  # an older record delivered late
            if before is not None:
                self._names.pop((before.district_id, before.username.casefold()), None)
                self._emails.get((before.district_id, before.email.casefold()), set()).discard(
                    before.key
                )
            self._accounts[account.key] = account
            self._names[(account.district_id, account.username.casefold())] = account.key
            if account.email:
                email = (account.district_id, account.email.casefold())
                self._emails.setdefault(email, set()).add(account.key)

    def forget(self, district_id: str) -> None:
        """A district deleted at the end of its contract: nobody of it signs in any more
        (its `roster_users` and `portal_credentials` rows are gone from the store too)."""
        for key in [k for k in self._accounts if k[0] == district_id]:
            del self._accounts[key]
        for index in (self._names, self._emails, self._portal):
            for key in [k for k in index if k[0] == district_id]:
                del index[key]

    def get(self, district_id: str, employee_id: str) -> Account | None:
        """The account, active or not; None when the district never had it."""
        return self._accounts.get((district_id, employee_id))

    def active(self, district_id: str, employee_id: str) -> Account | None:
        account = self._accounts.get((district_id, employee_id))
        return account if account is not None and account.is_active else None

    def find(self, district_id: str, name: str) -> Account | None:
        """The active account whose Username, or else unique e-mail, is ``name`` (any case)."""
        folded = name.strip().casefold()
        key = self._names.get((district_id, folded))
        if key is None:
            keys = self._emails.get((district_id, folded), set())
            key = next(iter(keys)) if len(keys) == 1 else None
        return self.active(*key) if key is not None else None

    def credential(self, account: Account) -> Credential:
        """The credential that signs ``account`` in (the newer of roster and portal)."""
        return effective_credential(account.roster, self._portal.get(account.key))

    async def set_password(self, account: Account, plain: str) -> Credential:
        """Hash (off the event loop) and store a password set in the portal; in force at
        once."""
        now = datetime.now(UTC)
        hashed = await asyncio.to_thread(hash_password, plain)
        credential = Credential(hashed, int(now.timestamp() * 1000))
        await self.store.aset_portal_credential(
            account.district_id, account.employee_id, credential, now
        )
        self._portal[account.key] = credential
        return credential

    def __len__(self) -> int:
        return len(self._accounts)
