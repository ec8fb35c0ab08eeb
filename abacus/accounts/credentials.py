"""Where a staff member's password hash comes from, and which one signs them in (pure).

Two sources, each with the time it was set:
- the roster: the importer hashes `1_users.csv`'s `Password` (argon2id) and publishes the
  hash with ``password_set_at`` on `roster-users` (stored in `roster_users`);
- the portal: a password set through "Forgot password" (table `portal_credentials`,
  written only by the worker, so no roster import or topic restore can overwrite it).

The newer one signs in. A re-upload whose `Password` is blank, or verifies against the
published hash, keeps the published hash and its time: it is not a change, so a password
set in the portal since then stays in force. A different roster password is newer than
any portal password and wins, as an administrator resetting it would expect.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from abacus.accounts.passwords import hash_password, verify_password

__all__ = ["Credential", "effective_credential", "roster_credential"]


@dataclass(frozen=True, slots=True)
class Credential:
    """A password hash (argon2id PHC string; "" = none) and when it was set (epoch ms)."""

    password_hash: str = ""
    set_at: int = 0

    @property
    def usable(self) -> bool:
        return bool(self.password_hash)


def roster_credential(
    plain: str | None,
    published: Mapping[str, Any] | None,
    imported_at: int,
    *,
    hasher: Callable[[str], str] = hash_password,
    verifier: Callable[[str, str], bool] = verify_password,
) -> Credential:
    """The credential an import publishes for one user.

    ``plain``: the upload's password (None when blank); ``published``: the user's last
    record on the topic (None for a new user). Blank keeps what was published; a password
    that verifies against the published hash keeps that hash and its time (no re-hash, no
    change); any other password is hashed now and dated ``imported_at``.
    """
    before = Credential(
        str((published or {}).get("password_hash") or ""),
        int((published or {}).get("password_set_at") or 0),
    )
    if not plain:
        return before
    if before.usable and verifier(before.password_hash, plain):
        return before
    return Credential(hasher(plain), imported_at)


def effective_credential(roster: Credential, portal: Credential | None) -> Credential:
    """The credential that signs the user in: the one set last."""
    if portal is not None and portal.usable and portal.set_at >= roster.set_at:
        return portal
    return roster
