"""A staff account as the portal sees it: the roster's user plus the credential in force (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from abacus.accounts.credentials import Credential
from abacus.catalog import ROSTER_USERS

__all__ = ["ADMIN", "Account"]

ADMIN = 4  # User_Type of a district administrator (Abacus's documented extension)
_COLUMNS = {name: i for i, name in enumerate(ROSTER_USERS.columns)}


@dataclass(frozen=True, slots=True)
class Account:
    """One staff member of one district (from `roster_users`, latest version)."""

    district_id: str
    employee_id: str
    username: str
    email: str
    first_name: str
    last_name: str
    user_type: int
    buildings: tuple[str, ...]
    is_active: bool
    roster: Credential
    version: int = 0

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Account:
        """From a `roster_users` row in the catalog's column order."""

        def get(name: str) -> Any:
            return row[_COLUMNS[name]]

        return cls(
            district_id=str(get("district_id")),
            employee_id=str(get("employee_id")),
            username=str(get("username")),
            email=str(get("email") or ""),
            first_name=str(get("first_name")),
            last_name=str(get("last_name") or ""),
            user_type=int(get("user_type")),
            buildings=tuple(get("buildings")),
            is_active=bool(get("is_active")),
            roster=Credential(str(get("password_hash") or ""), int(get("password_set_at") or 0)),
            version=int(get("version")),
        )

    @property
    def key(self) -> tuple[str, str]:
        return (self.district_id, self.employee_id)

    @property
    def display_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def is_admin(self) -> bool:
        return self.user_type == ADMIN
