"""Portal pages for exports: the Student Data Export form, My exports (live), one export's
page (the mailed link) and its download for the requester or a district admin."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from abacus.export.files import ExportPathError, export_file
from abacus.export.form import PRODUCTS, RANGES, ExportForm, check_form
from abacus.export.jobs import ExportJobView
from abacus.export.request import ExportRequest
from abacus.kafka.export_requests import new_request_id
from streams.web.portal import PREFIX, Portal, User

__all__ = ["register", "rows_context"]

_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
Send = Callable[[ExportRequest], Awaitable[None]]


def rows_context(
    portal: Portal, user: User, jobs: list[ExportJobView], rows_url: str
) -> dict[str, object]:
    """What the exports table (`_export_rows.html`) shows; it polls ``rows_url`` while a
    job is still queued or in progress."""
    names = {}
    for job in jobs:
        account = portal.accounts.get(user.district_id, job.requester)
        names[job.requester] = account.display_name if account else job.requester
    return {
        "jobs": jobs,
        "pending": sum(1 for j in jobs if not j.final),
        "rows_url": rows_url,
        "poll_s": portal.settings.portal.poll_s,
        "show_requester": rows_url.startswith(f"{PREFIX}/admin"),
        "names": names,
    }


def register(web_app: web.Application, portal: Portal, send: Send) -> None:
    settings = portal.settings
    retention_days = round(settings.exports.retention_s / 86400)

    def form_page(
        request: web.Request, user: User, form: ExportForm, status: int = 200
    ) -> web.Response:
        config = portal.districts.get(user.district_id)
        if config is None:
            raise portal.page_error(request, 503, "Your district is not configured yet.")
        today = portal.district_today(user.district_id).date()
        year_start, yesterday = ExportForm.bounds(config, today)
        return portal.render(
            request,
            "export.html",
            {
                "form": form,
                "products": PRODUCTS,
                "ranges": RANGES,
                "year_start": year_start.isoformat(),
                "yesterday": yesterday.isoformat(),
            },
            user=user,
            status=status,
        )

    async def export_form(request: web.Request) -> web.StreamResponse:
        user = await portal.require_user(request)
        return form_page(request, user, ExportForm())

    async def export(request: web.Request) -> web.StreamResponse:
        user = await portal.require_user(request)
        data = await portal.form(request, user)
        config = portal.districts.get(user.district_id)
        if config is None:
            raise portal.page_error(request, 503, "Your district is not configured yet.")
        today = portal.district_today(user.district_id).date()
        export_request, form = check_form(
            ExportForm.from_post(data),
            request_id=new_request_id(),
            district_id=user.district_id,
            requester=user.employee_id,
            config=config,
            today=today,
        )
        if export_request is None:
            return form_page(request, user, form, status=400)
        await send(export_request)
        await portal.board.queued(export_request)
        await portal.audit(
            "export.requested", request, user.district_id, user.employee_id,
            target=export_request.request_id,
            detail=f"{export_request.product} {export_request.range}",
        )  # fmt: skip
        raise web.HTTPSeeOther(f"{PREFIX}/my-exports?requested={export_request.request_id}")

    async def my_exports(request: web.Request) -> web.StreamResponse:
        user = await portal.require_user(request)
        jobs = portal.board.listing(user.district_id, user.employee_id)
        requested = request.query.get("requested", "")
        context = rows_context(portal, user, jobs, f"{PREFIX}/my-exports/rows")
        context["requested"] = portal.board.get(user.district_id, requested)
        context["retention_days"] = retention_days
        return portal.render(request, "my_exports.html", context, user=user)

    async def my_rows(request: web.Request) -> web.StreamResponse:
        user = await portal.require_user(request)
        jobs = portal.board.listing(user.district_id, user.employee_id)
        context = rows_context(portal, user, jobs, f"{PREFIX}/my-exports/rows")
        context["oob"] = True  # the summary line is swapped in beside the rows
        return portal.render(request, "_export_rows.html", context, user=user)

    async def allowed_job(request: web.Request, user: User) -> ExportJobView:
        request_id = request.match_info["request_id"]
        job = (
            portal.board.get(user.district_id, request_id)
            if _REQUEST_ID.match(request_id)
            else None
        )
        if job is None:
            raise portal.page_error(request, 404, "There is no such export in your district.")
        if job.requester != user.employee_id and not user.account.is_admin:
            await portal.audit(
                "download.denied", request, user.district_id, user.employee_id,
                target=job.request_id, detail="portal: not the requester",
            )  # fmt: skip
            raise portal.page_error(
                request, 403, "This export belongs to someone else. Ask them, or a district "
                "administrator, to download it.",
            )  # fmt: skip
        return job

    def file_of(job: ExportJobView) -> Path | None:
        """The job's CSV, if the export wrote it and the retention has not deleted it."""
        try:
            path = export_file(settings.export_dir, job.district_id, f"{job.request_id}.csv")
        except ExportPathError:
            return None
        return path if path.is_file() else None

    async def export_page(request: web.Request) -> web.StreamResponse:
        user = await portal.require_user(request)
        job = await allowed_job(request, user)
        available = job.status == "completed" and file_of(job) is not None
        context = {"job": job, "available": available, "retention_days": retention_days}
        return portal.render(request, "export_detail.html", context, user=user)

    async def download(request: web.Request) -> web.StreamResponse:
        user = await portal.require_user(request)
        job = await allowed_job(request, user)
        path = file_of(job) if job.status == "completed" else None
        if path is None:
            raise portal.page_error(
                request, 404, "This export's file is not available (not finished, or no "
                "longer kept).",
            )  # fmt: skip
        await portal.audit(
            "download", request, user.district_id, user.employee_id, target=job.request_id,
            detail="portal",
        )  # fmt: skip
        return web.FileResponse(
            path,
            headers={
                "Content-Disposition": f'attachment; filename="{job.request_id}.csv"',
                "Content-Type": "text/csv; charset=utf-8",
                "Cache-Control": "no-store",
            },
        )

    r = web_app.router
    r.add_get(f"{PREFIX}/export", export_form)
    r.add_post(f"{PREFIX}/export", export)
    r.add_get(f"{PREFIX}/my-exports", my_exports)
    r.add_get(f"{PREFIX}/my-exports/rows", my_rows)
    r.add_get(f"{PREFIX}/exports/{{request_id}}", export_page)
    r.add_get(f"{PREFIX}/exports/{{request_id}}/download", download)
