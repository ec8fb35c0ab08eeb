"""A cookie-keeping HTTP client for the portal's pages that never follows redirects, so a
test sees each status and Location (the browser tests use Chromium instead)."""

from __future__ import annotations

import http.cookiejar
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


@dataclass
class Answer:
    status: int
    location: str
    text: str
    set_cookies: list[str]
    headers: dict[str, str]

    @property
    def csrf(self) -> str:
        match = _CSRF.search(self.text)
        assert match, f"no CSRF token on the page (status {self.status})"
        return match[1]


class PortalClient:
    """One browser's worth of cookies against ``base`` (the worker's URL)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.cookies), _NoRedirect()
        )

    def _open(self, request: urllib.request.Request) -> Answer:
        try:
            with self.opener.open(request, timeout=30) as resp:
                cookies = resp.headers.get_all("Set-Cookie") or []
                body = resp.read().decode(errors="replace")
                location = resp.headers.get("Location", "")
                return Answer(resp.status, location, body, cookies, dict(resp.headers))
        except urllib.error.HTTPError as exc:
            body = exc.read().decode(errors="replace")
            cookies = exc.headers.get_all("Set-Cookie") or []
            location = exc.headers.get("Location", "")
            return Answer(exc.code, location, body, cookies, dict(exc.headers))

    def get(self, path: str, headers: dict[str, str] | None = None) -> Answer:
        return self._open(urllib.request.Request(self.base + path, headers=headers or {}))

    def post(self, path: str, fields: dict[str, str]) -> Answer:
        data = urllib.parse.urlencode(fields).encode()
        return self._open(urllib.request.Request(self.base + path, data=data, method="POST"))

    def form_post(self, page: str, path: str, fields: dict[str, str]) -> Answer:
        """GET ``page`` for its CSRF token, then POST ``fields`` with it to ``path``."""
        token = self.get(page).csrf
        return self.post(path, {"csrf": token, **fields})

    def sign_in(self, district: str, name: str, password: str) -> Answer:
        return self.form_post(
            "/portal/sign-in",
            "/portal/sign-in",
            {"district": district, "username": name, "password": password},
        )

    def session_cookie(self) -> str | None:
        return next((c.value for c in self.cookies if c.name == "abacus_session"), None)
