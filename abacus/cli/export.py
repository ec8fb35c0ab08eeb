"""`abacus export request`: ask the worker for a Student Data Export over Kafka."""

from __future__ import annotations

import json
import shutil
import urllib.request
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from abacus.cli.common import fail, load_settings
from abacus.errors import AbacusError
from abacus.kafka.export_requests import new_request_id, send_request, wait_status

__all__ = ["export_app"]

export_app = typer.Typer(no_args_is_help=True, help="Student Data Exports.")


@export_app.command("request")
def request(
    district: Annotated[str, typer.Option(help="District id")],
    requester: Annotated[str, typer.Option(help="Employee_ID of the requesting staff member")],
    product: Annotated[str, typer.Option(help="prek2, g3plus or both")] = "both",
    ytd: Annotated[bool, typer.Option("--ytd", help="School-year start to yesterday")] = False,
    start: Annotated[str | None, typer.Option(help="YYYY-MM-DD")] = None,
    end: Annotated[str | None, typer.Option(help="YYYY-MM-DD")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the final status")] = False,
    output: Annotated[Path | None, typer.Option(help="Copy the CSV here (implies --wait)")] = None,
    corrected_headers: Annotated[
        bool, typer.Option(help="Emit corrected header names (documented option)")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait")] = 600.0,
) -> None:
    """Send an export request; with --wait print the final status and the CSV's path."""
    if ytd == (start is not None or end is not None):
        raise fail("give either --ytd or --start and --end")
    for value in (start, end):
        if value is not None:
            try:
                date.fromisoformat(value)
            except ValueError as exc:
                raise fail(f"{value!r} is not a YYYY-MM-DD date") from exc
    settings = load_settings()
    doc = {
        "request_id": new_request_id(),
        "district_id": district,
        "requester": requester,
        "product": product,
        "range": "ytd" if ytd else "custom",
        "start": start,
        "end": end,
        "corrected_headers": corrected_headers,
    }
    try:
        send_request(settings, doc)
        typer.echo(f"requested {doc['request_id']}")
        if not (wait or output):
            return
        status = wait_status(
            settings, str(doc["request_id"]), timeout, district_id=district, requester=requester
        )
    except AbacusError as exc:
        raise fail(str(exc)) from exc
    typer.echo(json.dumps(status))
    if status["status"] != "completed":
        raise fail(f"export {doc['request_id']} failed: {status.get('reason', 'unknown')}")
    path = status["path"]
    if output is not None:
        _fetch(status, output)
        path = str(output)
    typer.echo(path)


def _fetch(status: dict[str, str], output: Path) -> None:
    """Copy the CSV: from the local file when this machine has it, else via the link."""
    local = Path(status["path"])
    output.parent.mkdir(parents=True, exist_ok=True)
    if local.is_file():
        shutil.copyfile(local, output)
        return
    with urllib.request.urlopen(status["link"], timeout=60) as resp, output.open("wb") as fh:  # noqa: S310
        shutil.copyfileobj(resp, fh)
