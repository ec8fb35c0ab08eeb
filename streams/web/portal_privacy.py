"""Portal pages for a district admin's student deletions: the form, a confirmation step, then
the request's page with its status and, once completed, the signed receipt to download.

The portal puts the same record on `privacy-requests` as `abacus privacy delete` does, with
the signed-in admin as requester; the worker's privacy agent checks and carries it out
(a whole district's deletion, at the end of a contract, stays with the CLI).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from abacus.privacy.request import DeletionRequest, new_request_id, parse_student_list
from streams.web.portal import PREFIX, Portal, User

__all__ = ["register"]

Send = Callable[[DeletionRequest], Awaitable[None]]
_STATUS = 7  # privacy_requests columns: district, id, kind, requester, reason, ids, …, status


def _checked(user: User, fields: dict[str, str]) -> tuple[DeletionRequest | None, dict[str, str]]:
    """The request the form describes, or None and the error at its field (never naming a
    student)."""
    students = parse_student_list(fields.get("students", ""))
    try:
        request = DeletionRequest(
            request_id=fields.get("request_id") or new_request_id(),
            district_id=user.district_id,
            requester=user.employee_id,
            kind="students",
            students=tuple(students),
            reason=fields.get("reason", "").strip(),
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        field = "reason" if "reason" in first["loc"] else "students"
        return None, {field: str(first["msg"]).removeprefix("Value error, ")}
    return request, {}


def register(web_app: web.Application, portal: Portal, send: Send) -> None:
    def form_page(
        request: web.Request, user: User, fields: dict[str, str], errors: dict[str, str]
    ) -> web.Response:
        context = {"fields": fields, "errors": errors}
        status = 400 if errors else 200
        return portal.render(request, "admin_deletion.html", context, user=user, status=status)

    async def deletion_form(request: web.Request) -> web.StreamResponse:
        user = await portal.require_user(request, admin=True)
        return form_page(request, user, {}, {})

    async def deletion_post(request: web.Request) -> web.StreamResponse:
        user = await portal.require_user(request, admin=True)
        fields = dict(await portal.form(request, user))
        deletion, errors = _checked(user, fields)
        if deletion is None:
            return form_page(request, user, fields, errors)
        if fields.get("confirm") != "yes":  # the confirmation step, with the id it will use
            context = {"fields": fields, "deletion": deletion}
            return portal.render(request, "admin_deletion_confirm.html", context, user=user)
        await send(deletion)
        raise web.HTTPSeeOther(f"{PREFIX}/admin/deletions/{deletion.request_id}")

    async def _own_request(request: web.Request, user: User) -> tuple[str, Any]:
        request_id = request.match_info["request_id"]
        row = await portal.store.aprivacy_request(request_id)
        if row is not None and row[0] != user.district_id:
            raise portal.page_error(request, 404, "No such deletion request in your district.")
        return request_id, row

    async def deletion_page(request: web.Request) -> web.StreamResponse:
        user = await portal.require_user(request, admin=True)
        request_id, row = await _own_request(request, user)
        status = str(row[_STATUS]) if row is not None else "queued"
        context = {"request_id": request_id, "status": status, "count": 0, "reason": ""}
        if row is not None:
            context["count"] = len(row[5])
            context["reason"] = str(row[4])
        return portal.render(request, "admin_deletion_status.html", context, user=user)

    async def receipt(request: web.Request) -> web.StreamResponse:
        user = await portal.require_user(request, admin=True)
        request_id, row = await _own_request(request, user)
        text = await portal.store.aprivacy_receipt(request_id) if row is not None else None
        if text is None:
            raise portal.page_error(request, 404, "This deletion has no receipt yet.")
        body = json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"
        return web.Response(
            text=body,
            content_type="application/json",
            headers={
                "Content-Disposition": f'attachment; filename="{request_id}.json"',
                "Cache-Control": "no-store",
            },
        )

    r = web_app.router
    r.add_get(f"{PREFIX}/admin/deletions", deletion_form)
    r.add_post(f"{PREFIX}/admin/deletions", deletion_post)
    r.add_get(f"{PREFIX}/admin/deletions/{{request_id}}", deletion_page)
    r.add_get(f"{PREFIX}/admin/deletions/{{request_id}}/receipt", receipt)
