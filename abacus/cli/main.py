"""The `abacus` command line: the stack, events, rosters, exports, lag and benchmarks."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from abacus.cli.audit import audit_app
from abacus.cli.bench import bench_app
from abacus.cli.common import fail, load_settings
from abacus.cli.export import export_app
from abacus.cli.ops import dlq_app, lag
from abacus.cli.privacy import privacy_app
from abacus.cli.roster import roster_app
from abacus.client import EventProducer, read_jsonl
from abacus.demo import run_demo
from abacus.errors import AbacusError
from abacus.kafka.topics import ensure_topics
from abacus.logs import configure_logging
from abacus.store.store import Store

__all__ = ["app", "fail", "main"]

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
events_app = typer.Typer(no_args_is_help=True, help="Send app events.")
app.add_typer(events_app, name="events")
app.add_typer(roster_app, name="roster")
app.add_typer(dlq_app, name="dlq")
app.command()(lag)
app.add_typer(export_app, name="export")
app.add_typer(bench_app, name="bench")
app.add_typer(privacy_app, name="privacy")
app.add_typer(audit_app, name="audit")


@app.command()
def up() -> None:
    """The main job: embedded broker (unless configured), the worker with all agents, web;
    the worker is restarted if it dies, and drains before the broker stops."""
    settings = load_settings()
    configure_logging(settings)
    from abacus.stack import run_stack  # deferred: only `up` supervises a worker

    try:
        code = run_stack(settings)
    except AbacusError as exc:
        raise fail(str(exc)) from exc
    if code:
        raise typer.Exit(code)


@app.command()
def demo() -> None:
    """Example district + simulated school year + a YTD export; prints the CSV path."""
    settings = load_settings()
    try:
        run_demo(settings, typer.echo)
    except AbacusError as exc:
        raise fail(str(exc)) from exc


@app.command()
def worker() -> None:
    """Only the worker (the broker must be running and configured)."""
    settings = load_settings()
    configure_logging(settings)
    from streams.run import run_worker  # deferred: imports Faust (~0.4 s) for `worker` only

    try:
        run_worker(settings)
    except AbacusError as exc:
        raise fail(str(exc)) from exc


@app.command()
def init() -> None:
    """Create the topics and apply the ClickHouse migrations (both idempotent), then exit."""
    settings = load_settings()
    try:
        topics = ensure_topics(settings)
        store = Store.open(settings)
        try:
            applied = store.migrate()
        finally:
            store.close()
    except AbacusError as exc:
        raise fail(str(exc)) from exc
    typer.echo(f"topics created: {len(topics)} {' '.join(topics)}".rstrip())
    typer.echo(f"migrations applied: {len(applied)} {' '.join(applied)}".rstrip())


@events_app.command("send")
def events_send(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="JSONL, one event a line")
    ],
    batch: Annotated[
        bool, typer.Option(help="Send each student's events as one batch record")
    ] = False,
) -> None:
    """Send events from a JSON-lines file (fields as in the event contract)."""
    settings = load_settings()
    try:
        events = read_jsonl(file)
        with EventProducer(settings) as producer:
            sent = producer.send_batches(events) if batch else producer.send_all(events)
    except AbacusError as exc:
        raise fail(str(exc)) from exc
    typer.echo(f"sent {len(events)} event(s) in {sent} record(s)")


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="A read-only SQL query")],
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="NAME=VALUE for {NAME:Type}")
    ] = None,
) -> None:
    """Run a read query on the store and print rows as JSON lines (stack must be down in
    embedded mode: chDB allows one process per data path)."""
    settings = load_settings()
    try:
        params = dict(p.split("=", 1) for p in param or [])
        store = Store.open(settings)
        try:
            rows = store.read(query, params)
        finally:
            store.close()
        for row in rows:
            typer.echo(json.dumps(list(row), default=str))
    except AbacusError as exc:
        raise fail(str(exc)) from exc


def main() -> None:
    """Console-script entry point."""
    logging.captureWarnings(True)
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
