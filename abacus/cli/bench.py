"""`abacus bench ingest|export|portal`: the product against its baseline, in the same run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["bench_app"]

bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks with their baselines.")
OutDir = Annotated[Path, typer.Option(help="Where the JSON results go")]


@bench_app.command("ingest")
def ingest(
    events: Annotated[int, typer.Option(help="Events to ingest")] = 400_000,
    batch: Annotated[
        bool, typer.Option(help="SDK batch records (else one event per record)")
    ] = True,
    quick: Annotated[bool, typer.Option("--quick", help="A small run (< 1 min)")] = False,
    fresh_seconds: Annotated[
        float, typer.Option(min=1.0, help="How long freshness is measured at half the rate")
    ] = 10.0,
    out: OutDir = Path("bench-results"),
) -> None:
    """Events/s produced → aggregates queryable, against a raw aiokafka + insert loader."""
    from abacus.bench.ingest import run_ingest_bench  # deferred: only `bench` needs it

    run_ingest_bench(
        events=40_000 if quick else events, batch=batch, out_dir=out, fresh_s=fresh_seconds
    )


@bench_app.command("export")
def export(
    students: Annotated[int, typer.Option(help="Students in the district")] = 100_000,
    days: Annotated[int, typer.Option(help="School days of aggregates per student")] = 180,
    quick: Annotated[bool, typer.Option("--quick", help="A small run (< 1 min)")] = False,
    out: OutDir = Path("bench-results"),
) -> None:
    """Export seconds against ClickHouse's own CSVWithNames of the same data."""
    from abacus.bench.export import run_export_bench  # deferred: only `bench` needs it

    run_export_bench(students=5_000 if quick else students, days=30 if quick else days, out_dir=out)


@bench_app.command("portal")
def portal(
    users: Annotated[int, typer.Option(help="Signed-in users browsing and polling")] = 100,
    seconds: Annotated[float, typer.Option(min=2.0, help="How long the users browse")] = 20.0,
    events: Annotated[int, typer.Option(help="Events to measure the ingest rate on")] = 100_000,
    quick: Annotated[bool, typer.Option("--quick", help="A small run (< 1 min)")] = False,
    out: OutDir = Path("bench-results"),
) -> None:
    """Portal page/poll latency under ingest at half its rate, against /healthz."""
    from abacus.bench.portal import run_portal_bench  # deferred: only `bench` needs it

    run_portal_bench(
        users=20 if quick else users,
        events=20_000 if quick else events,
        seconds=5.0 if quick else seconds,
        out_dir=out,
    )
