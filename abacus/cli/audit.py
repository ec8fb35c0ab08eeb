"""`abacus audit list`: the district's audit trail (exports, downloads, deletions)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

import typer
from rich.console import Console
from rich.table import Table

from abacus.audit import ACTIONS
from abacus.cli.common import fail, load_settings
from abacus.cli.privacy import with_store
from abacus.errors import AbacusError, StackError
from abacus.worker_api import call_worker

__all__ = ["audit_app"]

audit_app = typer.Typer(no_args_is_help=True, help="The audit trail.")


@audit_app.command("list")
def audit_list(
    district: Annotated[str, typer.Option(help="District id")],
    since: Annotated[str | None, typer.Option(help="YYYY-MM-DD (UTC) or an ISO time")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first")] = 1000,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines for machines")] = False,
) -> None:
    """Audit entries of a district, newest first: exports requested, downloads (and refused
    ones), deletions and re-enables (through the running worker, or the store directly)."""
    settings = load_settings()
    start: datetime | None = None
    if since is not None:
        try:
            start = (
                datetime.fromisoformat(since)
                if "T" in since
                else datetime.combine(date.fromisoformat(since), datetime.min.time())
            )
        except ValueError as exc:
            raise fail(f"--since {since!r} is not a date", 2) from exc
        start = start if start.tzinfo else start.replace(tzinfo=UTC)
    query = {
        "district": district,
        "limit": limit,
        **({"since": start.isoformat()} if start else {}),
    }
    try:
        try:
            entries = call_worker(settings, "GET", f"/audit?{urlencode(query)}")["entries"]
        except StackError:
            found = with_store(
                settings, lambda store: store.audit_entries(district, since=start, limit=limit)
            )
            entries = [e.as_json() for e in found]
    except AbacusError as exc:
        raise fail(str(exc)) from exc
    if as_json:
        for entry in entries:
            typer.echo(json.dumps(entry))
        return
    _print(district, entries)


def _print(district: str, entries: list[dict[str, Any]]) -> None:
    table = Table(title=f"audit trail of {district}: {len(entries)} entr(y/ies), newest first")
    for name in ("at (UTC)", "actor", "action", "target", "detail", "remote"):
        table.add_column(name)
    for e in entries:
        action = e["action"]
        table.add_row(
            e["at"][:19].replace("T", " "),
            e["actor"],
            f"{action} ({ACTIONS[action]})" if action in ACTIONS else action,
            e["target"],
            e["detail"],
            e["remote"],
        )
    Console().print(table)
