"""Portal pages for signing in and out, and for setting a password with a mailed link."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable

from aiohttp import web

from abacus.accounts.account import Account
from abacus.accounts.passwords import new_password_problem, verify_password
from abacus.accounts.resets import ResetTicket
from abacus.errors import AbacusError
from abacus.mail import ResetMail
from streams.web.portal import PREFIX, Portal, safe_next

__all__ = ["register"]

log = logging.getLogger(__name__)
SIGN_IN_FAILED = "The username or password is not right. Check them and try again."


def register(
    web_app: web.Application, portal: Portal, send_reset: Callable[[ResetMail], None] | None
) -> None:
    districts = portal.districts

    def district_choices() -> list[tuple[str, str]]:
        return sorted(((d, c.name) for d, c in districts.items()), key=lambda p: p[1])

    def sign_in_page(
        request: web.Request,
        *,
        district: str = "",
        name: str = "",
        error: str = "",
        notice: str = "",
        status: int = 200,
    ) -> web.Response:
        choices = district_choices()
        chosen = district or (choices[0][0] if len(choices) == 1 else "")
        return portal.render(
            request,
            "sign_in.html",
            {
                "districts": choices,
                "district": chosen,
                "name": name,
                "next": safe_next(request.query.get("next")),
                "error": error,
                "notice": notice,
            },
            status=status,
        )

    async def sign_in_form(request: web.Request) -> web.StreamResponse:
        if await portal.user(request) is not None:
            raise web.HTTPSeeOther(safe_next(request.query.get("next")))
        notices = {
            "out": "You are signed out.",
            "reset": "Your password is set. Sign in with it.",
            "ended": "Your session has ended. Sign in again.",
        }
        return sign_in_page(
            request,
            district=request.query.get("district", ""),
            notice=notices.get(request.query.get("notice", ""), ""),
        )

    async def sign_in(request: web.Request) -> web.StreamResponse:
        form = await portal.form(request, None)
        district = form.get("district", "")[:64]
        name = form.get("username", "")[:256]
        password = form.get("password", "")
        address = request.remote or ""
        account = portal.accounts.find(district, name)
        # per account (by Username or e-mail alike) when there is one, else per typed name
        user_key = portal.throttles.user_key(district, account.employee_id if account else name)
        wait = portal.throttles.retry_after(user_key, address)
        if wait is not None:
            await portal.audit(
                "signin.throttled", request, district, _actor(account), detail=address
            )
            minutes = max(1, math.ceil(wait / 60))
            error = (
                "Too many failed sign-ins. Wait "
                f"{minutes} minute{'s' if minutes > 1 else ''} and try again, or use "
                "Forgot password."
            )
            return sign_in_page(request, district=district, name=name, error=error, status=429)
        if district not in districts:
            return sign_in_page(request, name=name, error="Choose your district.", status=400)
        stored = portal.accounts.credential(account).password_hash if account else ""
        # Verified even when nobody matches (against a dummy hash): the answer takes as long.
        ok = await asyncio.to_thread(verify_password, stored, password)
        if not ok or account is None:
            portal.throttles.fail(user_key, address)
            detail = (
                "no active user by that name" if account is None
                else "no password set" if not stored else "wrong password"
            )  # fmt: skip
            await portal.audit("signin.failed", request, district, _actor(account), detail=detail)
            return sign_in_page(
                request, district=district, name=name, error=SIGN_IN_FAILED, status=401
            )
        portal.throttles.succeeded(user_key)
        old = request.cookies.get("abacus_session")
        portal.sessions.end(old)
        token, _ = portal.sessions.open(account)
        await portal.audit("signin", request, district, account.employee_id)
        response = web.HTTPSeeOther(safe_next(form.get("next")))
        portal.set_session_cookie(response, token)
        raise response

    async def sign_out(request: web.Request) -> web.StreamResponse:
        user = await portal.user(request)
        if user is not None:
            await portal.form(request, user)
            portal.sessions.end(user.token)
            await portal.audit("signout", request, user.district_id, user.employee_id)
        response = web.HTTPSeeOther(f"{PREFIX}/sign-in?notice=out")
        portal.clear_session_cookie(response)
        raise response

    # --- forgot password / reset ---------------------------------------------------------------

    async def forgot_form(request: web.Request) -> web.StreamResponse:
        choices = district_choices()
        return portal.render(
            request,
            "forgot.html",
            {
                "districts": choices,
                "district": choices[0][0] if len(choices) == 1 else "",
                "name": "",
                "sent": False,
                "error": "",
                "minutes": round(portal.settings.portal.reset_ttl_s / 60),
            },
        )

    async def forgot(request: web.Request) -> web.StreamResponse:
        form = await portal.form(request, None)
        district = form.get("district", "")[:64]
        name = form.get("username", "")[:256]
        choices = district_choices()
        context = {
            "districts": choices, "district": district, "name": name, "sent": True,
            "error": "", "minutes": round(portal.settings.portal.reset_ttl_s / 60),
        }  # fmt: skip
        if district not in districts or not name.strip():
            context.update(sent=False, error="Choose your district and enter your username.")
            return portal.render(request, "forgot.html", context, status=400)
        account = portal.accounts.find(district, name)
        address = request.remote or ""
        # per account (by Username or e-mail alike) when there is one, else per typed name
        throttled = portal.throttles.reset_throttled(
            portal.throttles.user_key(district, account.employee_id if account else name),
            address,
        )
        if account is not None and account.email and not throttled:
            token = portal.resets.issue(account)
            _mail_in_background(account, token)
            await portal.audit("reset.requested", request, district, account.employee_id)
        else:
            why = "throttled" if throttled else "no active user with an e-mail by that name"
            await portal.audit("reset.requested", request, district, "", detail=why)
        # The same answer whether or not the account exists (and the mail is sent after it).
        return portal.render(request, "forgot.html", context)

    def _mail_in_background(account: Account, token: str) -> None:
        if send_reset is None:
            log.warning("password reset requested but SMTP is not configured")
            return
        config = districts.get(account.district_id)
        mail = ResetMail(
            account.email,
            config.name if config else account.district_id,
            f"{portal.settings.web.base_url}{PREFIX}/reset/{token}",
            round(portal.settings.portal.reset_ttl_s / 60),
        )

        async def send() -> None:
            try:
                await asyncio.to_thread(send_reset, mail)
            except AbacusError as exc:
                log.warning("reset mail not sent: %s", exc)

        task = asyncio.get_running_loop().create_task(send())
        _background.add(task)
        task.add_done_callback(_background.discard)

    async def reset_denied(request: web.Request, token: str, problem: str) -> web.Response:
        ticket, _ = portal.resets.check(token)
        district = ticket.district_id if ticket else ""
        actor = ticket.employee_id if ticket else ""
        await portal.audit("reset.denied", request, district, actor, detail=problem)
        return portal.render(request, "reset_denied.html", {"problem": problem}, status=410)

    async def reset_form(request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        ticket, problem = portal.resets.check(token)
        account = portal.accounts.active(ticket.district_id, ticket.employee_id) if ticket else None
        if ticket is None or problem is not None or account is None:
            return await reset_denied(request, token, _why_denied(ticket, problem))
        return portal.render(request, "reset.html", {"token": token, "error": ""})

    async def reset(request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        form = await portal.form(request, None)
        ticket, problem = portal.resets.check(token)
        account = portal.accounts.active(ticket.district_id, ticket.employee_id) if ticket else None
        if ticket is None or problem is not None or account is None:
            return await reset_denied(request, token, _why_denied(ticket, problem))
        password = form.get("password", "")
        error = new_password_problem(
            password,
            confirm=form.get("confirm", ""),
            avoid=(account.username, account.email, account.employee_id),
        )
        if error:
            return portal.render(
                request, "reset.html", {"token": token, "error": error}, status=400
            )
        if portal.resets.redeem(token) is None:  # lost a race with another tab
            return await reset_denied(request, token, "used")
        await portal.accounts.set_password(account, password)
        ended = portal.sessions.end_all(account.district_id, account.employee_id)
        await portal.audit(
            "reset.completed", request, account.district_id, account.employee_id,
            detail=f"{ended} open session(s) ended",
        )  # fmt: skip
        raise web.HTTPSeeOther(f"{PREFIX}/sign-in?notice=reset&district={account.district_id}")

    r = web_app.router
    r.add_get(f"{PREFIX}/sign-in", sign_in_form)
    r.add_post(f"{PREFIX}/sign-in", sign_in)
    r.add_post(f"{PREFIX}/sign-out", sign_out)
    r.add_get(f"{PREFIX}/forgot", forgot_form)
    r.add_post(f"{PREFIX}/forgot", forgot)
    r.add_get(f"{PREFIX}/reset/{{token}}", reset_form)
    r.add_post(f"{PREFIX}/reset/{{token}}", reset)


def _actor(account: Account | None) -> str:
    """Who the audit names: the account's Employee_ID, never a name typed that matches no
    one (it is often a password typed into the username box)."""
    return account.employee_id if account is not None else ""


def _why_denied(ticket: ResetTicket | None, problem: str | None) -> str:
    """The audit's reason a reset link is refused: its own problem (used, expired), an
    unknown token, or a user deactivated since the link was mailed."""
    if ticket is None:
        return "unknown"
    return problem or "deactivated"


_background: set[asyncio.Task[None]] = set()
