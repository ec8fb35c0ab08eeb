"""The one audit trail: who did what to which export, deletion or account, when (pure).

Every entry is one `audit_log` row. Actions are dotted names, a family then the outcome
(`export.requested`, `deletion.completed`, …). ``actor`` is an Employee_ID; ``target`` the
request id the action was about, or a student's pseudonym (`abacus.privacy.pseudonym`),
never a student id. ``detail`` holds counts and reasons, never personal values.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["ACTIONS", "AuditEntry"]

ACTIONS: dict[str, str] = {
    "export.requested": "export requested",
    "download": "export downloaded",
    "download.denied": "download refused",
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
