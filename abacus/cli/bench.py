"""`abacus bench ingest|export|portal|privacy|ops`: the product against its baseline, in the
same run."""

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
    quick: Annotated[
        bool,
        typer.Option(
            "--quick",
            help="A small run to try it (40k events: ~1.5-2 min on 2 cores); its ratio is"
            " not the figure: the worker's start weighs on a window of about a second",
        ),
    ] = False,
    fresh_seconds: Annotated[
        float, typer.Option(min=1.0, help="How long freshness is measured at half the rate")
    ] = 10.0,
    rounds: Annotated[
        int, typer.Option(min=1, help="Rounds of loader and worker runs; medians reported")
    ] = 1,
    out: OutDir = Path("bench-results"),
) -> None:
    """Events/s produced → aggregates queryable, against a raw aiokafka + insert loader."""
    from abacus.bench.ingest import run_ingest_bench  # deferred: only `bench` needs it

    run_ingest_bench(
        events=40_000 if quick else events,
        batch=batch,
        out_dir=out,
        fresh_s=fresh_seconds,
        rounds=rounds,
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


@bench_app.command("freshness")
def freshness(
    students: Annotated[int, typer.Option(help="Students in the district")] = 100_000,
    days: Annotated[int, typer.Option(help="School days of aggregates per student")] = 180,
    rate: Annotated[float, typer.Option(help="Single-event records/s sent meanwhile")] = 1000.0,
    calm_seconds: Annotated[
        float, typer.Option(min=1.0, help="How long freshness is measured with no export")
    ] = 20.0,
    quick: Annotated[bool, typer.Option("--quick", help="A small run (< 2 min)")] = False,
    out: OutDir = Path("bench-results"),
) -> None:
    """Ingest freshness p50/p99 with and without a concurrent export, per ClickHouse lane
    mode (shared = one client for everything, separate = ingest on its own lane)."""
    from abacus.bench.freshness import run_freshness_bench  # deferred: only `bench` needs it

    if quick:
        students, days, rate, calm_seconds = 2_000, 10, 200.0, 3.0
    run_freshness_bench(students=students, days=days, rate=rate, calm_s=calm_seconds, out_dir=out)


@bench_app.command("privacy")
def privacy(
    students: Annotated[int, typer.Option(help="Students in the district")] = 100_000,
    days: Annotated[int, typer.Option(help="School days of data per student")] = 180,
    deleted: Annotated[int, typer.Option(help="Students in the bulk deletion")] = 1_000,
    quick: Annotated[bool, typer.Option("--quick", help="A small run (< 1 min)")] = False,
    out: OutDir = Path("bench-results"),
) -> None:
    """One student's, many students' and a whole district's deletion, each against a
    full-table read of every table it reaches."""
    from abacus.bench.privacy import run_privacy_bench  # deferred: only `bench` needs it

    run_privacy_bench(
        students=5_000 if quick else students,
        days=30 if quick else days,
        deleted=100 if quick else deleted,
        out_dir=out,
    )


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


@bench_app.command("ops")
def ops(
    events: Annotated[int, typer.Option(help="Events each worker ingests")] = 200_000,
    rounds: Annotated[int, typer.Option(min=1, help="Baseline/product pairs, alternating")] = 3,
    quick: Annotated[bool, typer.Option("--quick", help="A small run (< 1 min)")] = False,
    out: OutDir = Path("bench-results"),
) -> None:
    """Ingest events/s with the lag monitor and /ops polled every second, against neither."""
    from abacus.bench.ops import run_ops_bench  # deferred: only `bench` needs it

    run_ops_bench(events=20_000 if quick else events, rounds=1 if quick else rounds, out_dir=out)
