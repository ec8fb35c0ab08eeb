"""The `abacus` command line: the stack, events, rosters, exports, lag and benchmarks."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from abacus.cli_bench import bench_app
from abacus.cli_export import export_app
from abacus.cli_ops import dlq_app, lag
from abacus.cli_roster import roster_app
from abacus.errors import AbacusError
from abacus.settings import AbacusSettings

__all__ = ["app", "main"]

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
events_app = typer.Typer(no_args_is_help=True, help="Send app events.")
app.add_typer(events_app, name="events")
app.add_typer(roster_app, name="roster")
app.add_typer(dlq_app, name="dlq")
app.command()(lag)
app.add_typer(export_app, name="export")
app.add_typer(bench_app, name="bench")


def _settings() -> AbacusSettings:
    return AbacusSettings()


def _setup_logging(settings: AbacusSettings) -> None:
    from abacus.logs import configure_logging

    configure_logging(settings)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print a one-line reason on stderr and return the Exit to raise."""
    typer.echo(f"abacus: {message}", err=True)
    return typer.Exit(code)


@app.command()
def up() -> None:
    """The main job: embedded broker (unless configured), the worker with all agents, web;
    the worker is restarted if it dies, and drains before the broker stops."""
    settings = _settings()
    _setup_logging(settings)
    from abacus.stack import run_stack

    try:
        code = run_stack(settings)
    except AbacusError as exc:
        raise fail(str(exc)) from exc
    if code:
        raise typer.Exit(code)


@app.command()
def demo() -> None:
    """Example district + simulated school year + a YTD export; prints the CSV path."""
    from abacus.demo import run_demo

    settings = _settings()
    try:
        run_demo(settings, typer.echo)
    except AbacusError as exc:
        raise fail(str(exc)) from exc


@app.command()
def worker() -> None:
    """Only the worker (the broker must be running and configured)."""
    settings = _settings()
    _setup_logging(settings)
    from streams.run import run_worker

    try:
        run_worker(settings)
    except AbacusError as exc:
        raise fail(str(exc)) from exc


@app.command()
def init() -> None:
    """Create the topics and apply the ClickHouse migrations (both idempotent), then exit."""
    from abacus.store.client import connect
    from abacus.store.migrations import apply_migrations
    from abacus.topics import ensure_topics

    settings = _settings()
    try:
        topics = ensure_topics(settings)
        applied = apply_migrations(connect(settings), settings.clickhouse.database)
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
    from abacus.client import EventProducer, read_jsonl

    settings = _settings()
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
    from abacus.store.client import connect, query_rows

    settings = _settings()
    try:
        client = connect(settings)
        params = dict(p.split("=", 1) for p in param or [])
        for row in query_rows(client, query, **params):
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
