"""Portal pages for district administrators (User_Type 4): every export of the district,
the audit log, and the roster upload (the same importer as `abacus roster import`)."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from aiohttp import BodyPartReader, web

from abacus.audit import ACTIONS
from abacus.errors import AbacusError
from abacus.roster.importer import ImportResult, import_roster
from abacus.roster.validation import ROSTER_FILES
from streams.web.portal import PREFIX, Portal
from streams.web.portal_exports import rows_context

__all__ = ["register"]

_SHOWN_ERRORS = 500


def register(web_app: web.Application, portal: Portal) -> None:
    settings = portal.settings

    async def district_exports(request: web.Request) -> web.StreamResponse:
        user = await portal.require_user(request, admin=True)
        jobs = portal.board.listing(user.district_id, limit=500)
        context = rows_context(portal, user, jobs, f"{PREFIX}/admin/exports/rows")
        return portal.render(request, "admin_exports.html", context, user=user)

    async def district_rows(request: web.Request) -> web.StreamResponse:
        user = await portal.require_user(request, admin=True)
        jobs = portal.board.listing(user.district_id, limit=500)
        context = rows_context(portal, user, jobs, f"{PREFIX}/admin/exports/rows")
        context["oob"] = True  # the summary line is swapped in beside the rows
        return portal.render(request, "_export_rows.html", context, user=user)

    async def audit_log(request: web.Request) -> web.StreamResponse:
        user = await portal.require_user(request, admin=True)
        action = request.query.get("action", "")
        family = [a for a in ACTIONS if a == action or a.startswith(f"{action}.")]
        entries = await portal.store.aaudit_entries(
            user.district_id, limit=500, actions=family if action else ()
        )
        names = {}
        for e in entries:
            account = portal.accounts.get(user.district_id, e.actor)
            names[e.actor] = account.display_name if account else ""
        families = sorted({a.split(".")[0] for a in ACTIONS})
        context = {"entries": entries, "names": names, "action": action, "families": families}
        return portal.render(request, "admin_audit.html", context, user=user)

    async def roster_form(request: web.Request) -> web.StreamResponse:
        user = await portal.require_user(request, admin=True)
        return portal.render(request, "admin_roster.html", {"result": None, "error": ""}, user=user)

    async def roster_upload(request: web.Request) -> web.StreamResponse:
        user = await portal.require_user(request, admin=True)
        limit = settings.portal.max_upload_bytes
        fields: dict[str, str] = {}
        with tempfile.TemporaryDirectory(prefix="abacus-roster-") as tmp:
            folder = Path(tmp)
            total = 0
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader) or part.name is None:
                    continue
                if part.name in ROSTER_FILES:
                    with (folder / part.name).open("wb") as fh:
                        while chunk := await part.read_chunk(1 << 16):
                            total += len(chunk)
                            if total > limit:
                                raise portal.page_error(
                                    request, 413, f"The files are larger than {limit >> 20} MB."
                                )
                            fh.write(chunk)
                else:
                    fields[part.name] = (await part.text())[:4096]
            await portal.check_token(request, user, fields.get("csrf"))
            # A file input left empty still sends an empty part: that file is not uploaded
            # (its kind keeps what was published, as with `abacus roster import`).
            for name in ROSTER_FILES:
                empty = folder / name
                if empty.is_file() and empty.stat().st_size == 0:
                    empty.unlink()
            error = ""
            result: ImportResult | None = None
            if not any((folder / f).is_file() for f in ROSTER_FILES):
                error = f"Choose at least one of the roster files ({', '.join(ROSTER_FILES)})."
            else:
                try:
                    result = await asyncio.to_thread(
                        import_roster, settings, folder, user.district_id,
                        strict=fields.get("strict") == "on",
                    )  # fmt: skip
                except AbacusError as exc:
                    error = str(exc)
        detail = error or (
            "; ".join(s.line() for s in result.summaries) if result is not None else ""
        )
        await portal.audit(
            "roster.uploaded", request, user.district_id, user.employee_id, detail=detail
        )
        context = {
            "result": result,
            "error": error,
            "errors": result.errors[:_SHOWN_ERRORS] if result else [],
            "more": max(0, len(result.errors) - _SHOWN_ERRORS) if result else 0,
        }
        status = 400 if error else 200
        return portal.render(request, "admin_roster.html", context, user=user, status=status)

    r = web_app.router
    r.add_get(f"{PREFIX}/admin/exports", district_exports)
    r.add_get(f"{PREFIX}/admin/exports/rows", district_rows)
    r.add_get(f"{PREFIX}/admin/audit", audit_log)
    r.add_get(f"{PREFIX}/admin/roster", roster_form)
    r.add_post(f"{PREFIX}/admin/roster", roster_upload)
