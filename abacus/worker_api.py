"""Signed calls from the command line to the running worker (it owns the embedded store).

`abacus audit list`, `abacus privacy receipt` and `abacus privacy verify` need ClickHouse,
which in embedded mode only the worker may open while the stack is up. They ask the worker
over HTTP instead, signing each call with the same HMAC key as download links
(``ABACUS_WEB__SIGNING_KEY``): method, path with query, body digest and a 60-second expiry,
so only someone holding the key (an operator of this deployment) can ask.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from typing import Any

from abacus.errors import AbacusError, StackError
from abacus.settings import AbacusSettings

__all__ = ["HEADER", "CallError", "call_worker", "sign_call", "verify_call"]

HEADER = "X-Abacus-Signature"
_TTL_S = 60


class CallError(AbacusError):
    """The worker refused a call (bad or expired signature, unknown id, bad input)."""


def _mac(key: bytes, method: str, path_qs: str, body: bytes, expires: int) -> str:
    digest = hashlib.sha256(body).hexdigest()
    message = f"{method.upper()}\n{path_qs}\n{expires}\n{digest}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def sign_call(key: bytes, method: str, path_qs: str, body: bytes, now: float) -> str:
    """The header value: ``<expires>:<hmac>``."""
    expires = int(now) + _TTL_S
    return f"{expires}:{_mac(key, method, path_qs, body, expires)}"


def verify_call(
    key: bytes, method: str, path_qs: str, body: bytes, header: str | None, now: float
) -> None:
    """Raise CallError unless ``header`` signs exactly this call and has not expired."""
    try:
        expires_text, given = (header or "").split(":", 1)
        expires = int(expires_text)
    except ValueError:
        raise CallError("unsigned call") from None
    if not hmac.compare_digest(given, _mac(key, method, path_qs, body, expires)):
        raise CallError("bad signature")
    if now >= expires:
        raise CallError("signature expired")


def call_worker(
    settings: AbacusSettings, method: str, path_qs: str, doc: Any = None, timeout: float = 300
) -> Any:
    """Send a signed call to the worker's web server and return its JSON answer. StackError
    when no worker answers; CallError when it refuses."""
    body = b"" if doc is None else json.dumps(doc).encode()
    key = settings.web.signing_key.get_secret_value().encode()
    host = settings.web.host if settings.web.host not in ("0.0.0.0", "::", "") else "127.0.0.1"  # noqa: S104
    url = f"http://{host}:{settings.web.port}{path_qs}"
    request = urllib.request.Request(url, data=body or None, method=method.upper())
    request.add_header(HEADER, sign_call(key, method, path_qs, body, time.time()))
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        try:
            reason = json.loads(exc.read()).get("error", exc.reason)
        except (ValueError, AttributeError):
            reason = exc.reason
        raise CallError(f"the worker refused: {reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise StackError(f"no worker answers at {url.split('/', 3)[2]}") from exc
