"""A keyed one-way pseudonym for a student (pure): what audit rows keep after a deletion.

HMAC-SHA256 of ``district|student`` under a key derived from the signing key, so nobody
without the key can go from a pseudonym back to the id, or compute one to test a guess;
the vendor, holding the key, can still answer "was this student's row pseudonymised?".
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["PREFIX", "pseudonym", "pseudonym_key"]

PREFIX = "ps-"
_LABEL = b"abacus student pseudonym v1"


def pseudonym_key(signing_key: bytes) -> bytes:
    """The pseudonym key: its own derivation of the signing key (never the key itself)."""
    return hmac.new(signing_key, _LABEL, hashlib.sha256).digest()


def pseudonym(key: bytes, district_id: str, student_id: str) -> str:
    """``ps-`` and 32 hex digits (128 bits), stable for one key, district and student."""
    mac = hmac.new(key, f"{district_id}|{student_id}".encode(), hashlib.sha256)
    return PREFIX + mac.hexdigest()[:32]
