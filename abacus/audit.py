"""The one audit trail: who did what to which export, deletion or account, when and from
where (pure).

Every entry is one `audit_log` row. Actions are dotted names, a family then the outcome
(`signin`, `download.denied`, `deletion.completed`, …). ``actor`` is an Employee_ID (or what
was typed at a failed sign-in, never a password); ``target`` the request id or account the
action was about, or a student's pseudonym (`abacus.privacy.pseudonym`), never a student id.
``detail`` holds counts and reasons, never personal values.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["ACTIONS", "AuditEntry"]

ACTIONS: dict[str, str] = {
    "signin": "signed in",
    "signin.failed": "sign-in failed",
    "signin.throttled": "sign-in refused: too many failures",
    "signout": "signed out",
    "session.ended": "session ended (idle, expired, deactivated or new password)",
    "reset.requested": "password reset requested",
    "reset.completed": "password set through a reset link",
    "reset.denied": "reset link refused (used, expired or unknown)",
    "export.requested": "export requested in the portal",
    "export.accepted": "export request accepted by the export consumer (portal or CLI)",
    "download": "export downloaded",
    "download.denied": "download refused",
    "csrf.denied": "form refused: missing or wrong CSRF token",
    "roster.uploaded": "roster uploaded in the portal",
    "deletion.requested": "deletion requested",
    "deletion.completed": "deletion completed (receipt issued)",
    "deletion.failed": "deletion failed or refused",
    "deletion.reenabled": "deleted student or district re-enabled",
    "retention.applied": "retention deleted expired data",
}


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One row of the audit trail."""

    at: datetime
    district_id: str
    actor: str
    action: str
    target: str = ""
    detail: str = ""
    remote: str = ""

    def row(self) -> tuple[Any, ...]:
        """The `audit_log` row, in the catalog's column order (only known actions are
        written; rows read back may carry actions a newer version added)."""
        if self.action not in ACTIONS:
            raise ValueError(f"unknown audit action {self.action!r}")
        return (
            self.at, self.district_id, self.actor, self.action, self.target, self.detail,
            self.remote,
        )  # fmt: skip

    @property
    def label(self) -> str:
        return ACTIONS.get(self.action, self.action)

    def as_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(), "district_id": self.district_id, "actor": self.actor,
            "action": self.action, "target": self.target, "detail": self.detail,
            "remote": self.remote,
        }  # fmt: skip
