"""Links to an export: the portal page a person is mailed (sign-in required), and the
HMAC-signed, expiring download link scoped to one file (the machine interface) (pure)."""

from __future__ import annotations

import hashlib
import hmac
import re
from urllib.parse import urlencode

from abacus.errors import AbacusError

__all__ = ["LinkError", "portal_link", "sign_link", "verify_link"]


class LinkError(AbacusError, ValueError):
    """A download link that is tampered with, malformed or expired."""


def portal_link(base_url: str, request_id: str) -> str:
    """The portal page of one export: signed out, it asks for a sign-in first; only the
    requester or a district admin of its district may download the file there."""
    return f"{base_url.rstrip('/')}/portal/exports/{request_id}"


# What a link we issued holds, exactly: anything else is malformed before any comparison
# (`hmac.compare_digest` raises TypeError on non-ASCII text; `int` accepts Unicode digits).
_EXPIRES = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"[0-9a-f]{64}")


def _signature(key: bytes, path: str, expires: int, requester: str) -> str:
    message = f"{path}\n{expires}\n{requester}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def sign_link(base_url: str, path: str, *, key: bytes, expires: int, requester: str) -> str:
    """``base_url + path`` with ``expires`` (epoch s), the requester and an HMAC over all."""
    query = urlencode(
        {"expires": expires, "by": requester, "sig": _signature(key, path, expires, requester)}
    )
    return f"{base_url.rstrip('/')}{path}?{query}"


def verify_link(path: str, query: dict[str, str], *, key: bytes, now: int) -> str:
    """Return the requester the link was issued to, or raise LinkError."""
    try:
        expires_text, requester, given = query["expires"], query["by"], query["sig"]
    except KeyError as exc:
        raise LinkError("malformed link") from exc
    if not (_EXPIRES.fullmatch(expires_text) and _SIGNATURE.fullmatch(given)):
        raise LinkError("malformed link")
    expires = int(expires_text)
    expected = _signature(key, path, expires, requester)
    if not hmac.compare_digest(given.encode("ascii"), expected.encode("ascii")):
        raise LinkError("bad signature")
    if now >= expires:
        raise LinkError("link expired")
    return requester
