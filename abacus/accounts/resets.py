"""Password-reset tickets: a mailed, single-use token valid for a limited time (pure).

Only the token's SHA-256 is kept on the server; the token itself is in the mailed link.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

__all__ = ["ResetTicket", "token_digest"]


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(slots=True)
class ResetTicket:
    """One reset link's server side."""

    district_id: str
    employee_id: str
    expires: float
    used: bool = False

    def problem(self, now: float) -> str | None:
        """Why the ticket cannot be used at ``now`` ("used", "expired"), or None."""
        if self.used:
            return "used"
        if now >= self.expires:
            return "expired"
        return None
