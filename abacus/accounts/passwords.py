"""Password hashing (argon2id, argon2-cffi's defaults = RFC 9106 low-memory) and the rule a
new password must meet. CPU only: the callers run it off the event loop."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = [
    "MAX_LENGTH",
    "MIN_LENGTH",
    "hash_password",
    "new_password_problem",
    "verify_password",
]

MIN_LENGTH = 10
MAX_LENGTH = 256
# argon2id, t=3, m=64 MiB, p=4 (RFC 9106's second recommendation). Measured on the 2-core
# machine: 0.1-0.2 s per hash or verify, depending on load (README "Portal").
_HASHER = PasswordHasher()
# Verified against when no account matches, so an unknown name costs what a known one does.
_DUMMY_HASH = _HASHER.hash("not a password of anyone")


def hash_password(plain: str) -> str:
    """The argon2id PHC string of ``plain`` (a fresh random salt each time)."""
    return _HASHER.hash(plain)


def verify_password(stored: str, plain: str) -> bool:
    """True when ``plain`` matches the PHC string ``stored``; False for a mismatch, a blank
    or a malformed hash (never an exception). A blank ``stored`` still costs one verify."""
    try:
        return _HASHER.verify(stored or _DUMMY_HASH, plain) and bool(stored)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def new_password_problem(plain: str, *, confirm: str, avoid: tuple[str, ...] = ()) -> str | None:
    """Why ``plain`` cannot be a new password (plain words for the form), or None.

    Length over composition rules (NIST SP 800-63B): at least 10 characters, not the
    user's own name or e-mail, not one character repeated."""
    if plain != confirm:
        return "The two passwords do not match."
    if len(plain) < MIN_LENGTH:
        return f"Use at least {MIN_LENGTH} characters."
    if len(plain) > MAX_LENGTH:
        return f"Use at most {MAX_LENGTH} characters."
    if len(set(plain)) == 1:
        return "Use more than one different character."
    folded = plain.casefold()
    if any(word and folded == word.casefold() for word in avoid):
        return "Do not use your username, e-mail or employee id as the password."
    return None
