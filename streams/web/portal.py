"""The district portal's core on the worker's web server: templates (Jinja2 through
aiohttp-jinja2), static files, security headers, sessions and CSRF for every page.

The pages live in `portal_auth.py` (sign-in, sign-out, forgot and reset password),
`portal_exports.py` (the Student Data Export form, My exports, downloads) and
`portal_admin.py` (the district admin's exports, audit log and roster upload). Templates
are in `templates/` (`base.html` every page extends, `_*.html` pieces, `csrf_error.html`,
`patterns.html`), vendored assets in `static/` (see `static/VENDORED.md`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp_jinja2
import jinja2
from aiohttp import web

from abacus.accounts.account import Account
from abacus.accounts.sessions import Session, SessionRules, anonymous_csrf, check_csrf
from abacus.audit import AuditEntry
from abacus.district import DistrictConfig
from abacus.settings import AbacusSettings
from abacus.store.store import Store
from streams.portal.accounts import AccountDirectory
from streams.portal.board import ExportBoard
from streams.portal.sessions import Lookup, ResetDesk, SessionManager, Throttles

__all__ = ["PREFIX", "Portal", "User", "register_core", "safe_next"]

PREFIX = "/portal"
SESSION_COOKIE = "abacus_session"
NONCE_COOKIE = "abacus_nonce"
_HERE = Path(__file__).resolve().parent
# No inline script or style anywhere: htmx is told so by its meta config in base.html.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class User:
    """The signed-in staff member of a request."""

    account: Account
    session: Session
    token: str

    @property
    def district_id(self) -> str:
        return self.account.district_id

    @property
    def employee_id(self) -> str:
        return self.account.employee_id


class CsrfRefused(web.HTTPForbidden):
    """A form post without the right CSRF token (rendered by the middleware)."""


class Portal:
    """What every portal page uses: settings, store, accounts, sessions, the export board."""

    def __init__(
        self,
        settings: AbacusSettings,
        store: Store,
        accounts: AccountDirectory,
        board: ExportBoard,
        districts: Mapping[str, DistrictConfig],
    ) -> None:
        p = settings.portal
        self.settings = settings
        self.store = store
        self.accounts = accounts
        self.board = board
        self.districts = districts
        self.sessions = SessionManager(SessionRules(p.session_idle_s, p.session_max_s), accounts)
        self.resets = ResetDesk(p.reset_ttl_s)
        self.throttles = Throttles(p)
        key = settings.web.signing_key.get_secret_value().encode()
        self._csrf_key = hmac.new(key, b"abacus portal csrf", hashlib.sha256).digest()

    # --- who is asking ----------------------------------------------------------------------

    def lookup(self, request: web.Request) -> Lookup:
        """The request's session (looked up once per request)."""
        cached = request.get("portal_lookup")
        if cached is None:
            cached = self.sessions.lookup(request.cookies.get(SESSION_COOKIE))
            request["portal_lookup"] = cached
        return cached  # type: ignore[no-any-return]

    async def user(self, request: web.Request) -> User | None:
        found = self.lookup(request)
        if found.ended is not None and found.session is not None:
            await self.audit(
                "session.ended", request, found.session.district_id,
                found.session.employee_id, detail=found.ended,
            )  # fmt: skip
            request["portal_lookup"] = Lookup()
            return None
        if found.session is None or found.account is None:
            return None
        token = request.cookies.get(SESSION_COOKIE, "")
        return User(found.account, found.session, token)

    async def require_user(self, request: web.Request, *, admin: bool = False) -> User:
        """The signed-in user, else a redirect to sign in (and back here afterwards)."""
        user = await self.user(request)
        if user is None:
            if request.headers.get("HX-Request") == "true":
                # A list refreshing itself (htmx): the whole page goes to sign-in, rather
                # than the sign-in page landing inside the table.
                page = request.headers.get("HX-Current-URL", "")
                target = page[page.find(PREFIX) :] if PREFIX in page else f"{PREFIX}/my-exports"
                url = f"{PREFIX}/sign-in?{_query(next=safe_next(target))}"
                raise web.HTTPOk(headers={"HX-Redirect": url})
            target = request.path_qs if request.method == "GET" else f"{PREFIX}/export"
            raise web.HTTPSeeOther(f"{PREFIX}/sign-in?{_query(next=target)}")
        if admin and not user.account.is_admin:
            raise self.page_error(request, 403, "This page is for district administrators.")
        return user

    def district_today(self, district_id: str) -> datetime:
        config = self.districts.get(district_id)
        zone = ZoneInfo(config.timezone) if config is not None else UTC
        return datetime.now(UTC).astimezone(zone)

    # --- forms ----------------------------------------------------------------------------

    def csrf_token(self, request: web.Request, user: User | None) -> str:
        """The token every form carries: the session's, or before sign-in an HMAC of the
        browser's nonce cookie (set by the middleware)."""
        if user is not None:
            return user.session.csrf
        return anonymous_csrf(self._csrf_key, request.get("portal_nonce", ""))

    async def form(self, request: web.Request, user: User | None) -> Mapping[str, str]:
        """The posted form, after its CSRF check (a refusal is audited and gets its page)."""
        data = await request.post()
        fields = {k: v for k, v in data.items() if isinstance(v, str)}
        await self.check_token(request, user, fields.get("csrf"), fields.get("district", ""))
        return fields

    async def check_token(
        self, request: web.Request, user: User | None, given: str | None, district: str = ""
    ) -> None:
        """Refuse (audited, its own page) a post whose CSRF token is missing or wrong."""
        expected = (
            user.session.csrf
            if user is not None
            else anonymous_csrf(self._csrf_key, request.cookies.get(NONCE_COOKIE, ""))
        )
        if not check_csrf(expected, given):
            district = user.district_id if user else district[:64]
            actor = user.employee_id if user else ""
            await self.audit("csrf.denied", request, district, actor, detail=request.path)
            raise CsrfRefused()

    # --- answers ----------------------------------------------------------------------------

    def render(
        self,
        request: web.Request,
        template: str,
        context: Mapping[str, Any],
        *,
        user: User | None = None,
        status: int = 200,
    ) -> web.Response:
        district = self.districts.get(user.district_id) if user else None
        base = {
            "user": user,
            "district_name": district.name if district else "",
            "csrf": self.csrf_token(request, user),
            "path": request.path,
            "prefix": PREFIX,
        }
        return aiohttp_jinja2.render_template(template, request, {**base, **context}, status=status)

    def page_error(self, request: web.Request, status: int, message: str) -> web.HTTPException:
        """An HTTP error whose body is the portal's error page."""
        found = self.lookup(request)
        user = (
            User(found.account, found.session, "")
            if found.session is not None and found.account is not None and not found.ended
            else None
        )
        page = self.render(
            request, "error.html", {"status": status, "message": message}, user=user,
            status=status,
        )  # fmt: skip
        error = web.HTTPException(
            text=page.text, content_type="text/html", headers={"Cache-Control": "no-store"}
        )
        error.set_status(status)
        return error

    def set_session_cookie(self, response: web.StreamResponse, token: str) -> None:
        response.set_cookie(
            SESSION_COOKIE, token, path=PREFIX, httponly=True, samesite="Lax",
            secure=self.settings.web.https,
        )  # fmt: skip

    def clear_session_cookie(self, response: web.StreamResponse) -> None:
        response.del_cookie(SESSION_COOKIE, path=PREFIX)

    async def audit(
        self,
        action: str,
        request: web.Request,
        district_id: str,
        actor: str,
        *,
        target: str = "",
        detail: str = "",
    ) -> None:
        entry = AuditEntry(
            datetime.now(UTC), district_id, actor[:128], action, target[:128], detail[:512],
            request.remote or "",
        )  # fmt: skip
        await self.store.aaudit(entry)


def _query(**params: str) -> str:
    from urllib.parse import urlencode

    return urlencode(params)


def safe_next(target: str | None) -> str:
    """Where to go after sign-in: only a portal path of this site (no open redirect)."""
    bad = ("\\", "\n", "\r", "//")
    if target and target.startswith(f"{PREFIX}/") and not any(b in target for b in bad):
        return target
    return f"{PREFIX}/export"


def _middleware(portal: Portal) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def portal_pages(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(PREFIX):
            return await handler(request)
        nonce = request.cookies.get(NONCE_COOKIE)
        fresh = nonce is None or len(nonce) > 64
        request["portal_nonce"] = secrets.token_urlsafe(24) if fresh else nonce
        try:
            response = await handler(request)
        except CsrfRefused:
            response = portal.render(request, "csrf_error.html", {}, status=403)
        except web.HTTPException as exc:
            if exc.status >= 400 and exc.content_type != "text/html":
                response = portal.page_error(request, exc.status, exc.reason)
            else:
                response = exc
        headers = response.headers
        headers.setdefault("Content-Security-Policy", _CSP)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "same-origin")
        if not request.path.startswith(f"{PREFIX}/static/"):
            headers.setdefault("Cache-Control", "no-store")
        if fresh:
            response.set_cookie(
                NONCE_COOKIE, request["portal_nonce"], path=PREFIX, httponly=True,
                samesite="Lax", secure=portal.settings.web.https,
            )  # fmt: skip
        if isinstance(response, web.HTTPException):
            raise response
        return response

    return portal_pages


def register_core(web_app: web.Application, portal: Portal) -> None:
    """Templates, static files, the middleware, the portal's root and the pattern page."""
    env = aiohttp_jinja2.setup(
        web_app,
        loader=jinja2.FileSystemLoader(str(_HERE / "templates")),
        autoescape=jinja2.select_autoescape(default=True),
        undefined=jinja2.StrictUndefined,
    )
    env.filters["size"] = _size
    env.filters["local"] = lambda at, district: _local(portal, at, district)
    web_app.middlewares.append(_middleware(portal))
    web_app.router.add_static(f"{PREFIX}/static", str(_HERE / "static"), append_version=True)

    async def root(request: web.Request) -> web.StreamResponse:
        user = await portal.user(request)
        raise web.HTTPSeeOther(f"{PREFIX}/export" if user else f"{PREFIX}/sign-in")

    async def patterns(request: web.Request) -> web.StreamResponse:
        return portal.render(request, "patterns.html", {}, user=await portal.user(request))

    async def site_root(request: web.Request) -> web.StreamResponse:
        raise web.HTTPSeeOther(f"{PREFIX}/")

    web_app.router.add_get("/", site_root)  # the server's own root leads people here
    web_app.router.add_get(PREFIX, root)
    web_app.router.add_get(f"{PREFIX}/", root)
    web_app.router.add_get(f"{PREFIX}/patterns", patterns)


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1 << 20:
        return f"{n / 1024:.1f} KB"
    return f"{n / (1 << 20):.1f} MB"


def _local(portal: Portal, at: datetime, district_id: str) -> str:
    config = portal.districts.get(district_id)
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    local = at.astimezone(ZoneInfo(config.timezone)) if config is not None else at
    return local.strftime("%Y-%m-%d %H:%M")
