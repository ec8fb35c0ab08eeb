"""The export agent: `export-requests` → validated, scoped CSV → `export-status` events."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import faust

from abacus.errors import AbacusError, ExportRequestError, StorageError
from abacus.export.mail import send_link_mail
from consumers.export import ExportConsumer, ExportJob

if TYPE_CHECKING:
    from streams.app import Runtime

__all__ = ["register"]

log = logging.getLogger(__name__)


def _request_id(payload: bytes | None) -> str:
    try:
        value = json.loads(payload or b"").get("request_id")
    except (ValueError, AttributeError):
        return "unknown"
    return str(value) if value else "unknown"


def register(app: faust.App, runtime: Runtime) -> None:
    settings = runtime.settings
    topics = settings.topics
    requests = app.topic(
        topics.name(topics.export_requests), key_serializer="raw", value_serializer="raw"
    )
    statuses = app.topic(
        topics.name(topics.export_status), key_serializer="raw", value_serializer="raw"
    )
    consumer = ExportConsumer(
        settings, runtime.writer.client, runtime.districts, broker_epoch=runtime.broker_epoch
    )
    metrics = runtime.metrics

    async def publish(request_id: str, status: str, **fields: Any) -> None:
        doc = {
            "request_id": request_id,
            "status": status,
            "at": datetime.now(UTC).isoformat(),
            **fields,
        }
        await statuses.send(key=request_id.encode(), value=json.dumps(doc).encode())

    async def handle(payload: bytes | None) -> None:
        request_id = _request_id(payload)
        try:
            job: ExportJob = await runtime.writer.run(consumer.prepare, payload or b"")
        except ExportRequestError as exc:
            metrics.exports.labels("rejected").inc()
            await publish(request_id, "failed", reason=str(exc))
            return
        await publish(
            request_id,
            "accepted",
            range={"start": job.range.start.isoformat(), "end": job.range.end.isoformat()},
            scope=job.scope.kind,
        )
        loop = asyncio.get_running_loop()

        def progress(rows: int) -> None:
            asyncio.run_coroutine_threadsafe(publish(request_id, "progress", rows=rows), loop)

        await publish(request_id, "progress", rows=0)
        started = time.perf_counter()
        try:
            result = await runtime.writer.run(consumer.run, job, progress)
        except StorageError as exc:
            metrics.exports.labels("failed").inc()
            log.error("export %s failed: %s", request_id, exc)
            await publish(request_id, "failed", reason="the export could not be generated")
            return
        metrics.exports.labels("completed").inc()
        metrics.export_seconds.observe(time.perf_counter() - started)
        await publish(
            request_id,
            "completed",
            rows=result.rows,
            bytes=result.bytes,
            sha256=result.sha256,
            link=result.link,
            path=str(result.csv_path),
            manifest=str(result.manifest_path),
            seconds=round(result.seconds, 3),
        )
        if settings.smtp.host and job.requester_email:
            try:
                await asyncio.to_thread(
                    send_link_mail,
                    settings.smtp,
                    job.requester_email,
                    district=job.request.district_id,
                    request_id=request_id,
                    link=result.link,
                    rows=result.rows,
                )
            except AbacusError as exc:
                log.warning("export %s: %s", request_id, exc)

    @app.agent(requests, name="export")
    async def export(stream: faust.StreamT[bytes]) -> None:
        # One request at a time: each runs on the store's thread, and a failure of one
        # request becomes its failed status; it never kills the agent.
        async for payload in stream:
            await handle(payload)
