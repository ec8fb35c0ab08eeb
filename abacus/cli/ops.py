"""Operations commands: `abacus lag` (consumer lag and group status) and `abacus dlq`."""

from __future__ import annotations

import contextlib
import json
import signal
import threading
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from abacus.cli.common import fail
from abacus.cli.lag_view import lag_tables, watch_live
from abacus.errors import AbacusError
from abacus.kafka.broker_epoch import read_meta
from abacus.kafka.privacy import read_deny
from abacus.settings import AbacusSettings
from consumers.dlq import DeadLetterRecord, read_dead_letters, replay, resolve_pointers
from consumers.lag import LagReader, watch

__all__ = ["EXIT_GROUP_FAILING", "dlq_app", "lag"]

# `abacus lag` exit code when a group is stalled or stopped (1 = stack error, 2 = usage).
EXIT_GROUP_FAILING = 3

dlq_app = typer.Typer(no_args_is_help=True, help="Inspect and replay dead-lettered records.")


def _range_text(offsets: list[int]) -> str:
    """[1, 2, 3, 7] -> '1-3,7'."""
    spans: list[list[int]] = []
    for offset in sorted(offsets):
        if spans and offset == spans[-1][1] + 1:
            spans[-1][1] = offset
        else:
            spans.append([offset, offset])
    return ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in spans)


def lag(
    group: Annotated[
        list[str] | None, typer.Option("--group", "-g", help="Group(s); default: the app's")
    ] = None,
    all_groups: Annotated[bool, typer.Option("--all-groups", help="Every group")] = False,
    window: Annotated[float, typer.Option(min=0.0, help="Seconds to watch the groups")] = 6.0,
    samples: Annotated[int, typer.Option(min=2, help="Samples over the window")] = 4,
    as_json: Annotated[bool, typer.Option("--json", help="JSON for machines")] = False,
    live: Annotated[
        bool, typer.Option("--watch", "-w", help="Refresh a live table until Ctrl-C")
    ] = False,
    interval: Annotated[
        float, typer.Option(min=0.1, help="--watch: seconds between refreshes")
    ] = 2.0,
    count: Annotated[
        int | None, typer.Option(min=1, help="--watch: stop after N refreshes")
    ] = None,
) -> None:
    """Consumer lag per group/topic/partition and a status per group (ok, lagging, rewind,
    stalled, stopped) judged over a window; exits 3 when a group is stalled or stopped.
    With --watch, a live table refreshed every --interval seconds (status over the last
    --window seconds) until Ctrl-C."""
    settings = AbacusSettings()
    events = settings.topics.name(settings.topics.events)
    try:
        with LagReader(settings.broker) as reader:
            groups = list(group or [settings.ingest_group, settings.roster_group, settings.app_id])
            if all_groups:
                groups = sorted({*groups, *reader.groups()})
            if live:
                _watch_live(reader, groups, events, settings.ingest_group, interval, window, count)
                return
            # The ingest group always reports the events topic, even before a commit.
            reports = watch(
                reader,
                groups,
                window_s=window,
                samples=samples,
                group_topics={settings.ingest_group: [events]},
            )
    except AbacusError as exc:
        raise fail(str(exc)) from exc
    if as_json:
        typer.echo(json.dumps({"groups": [_report_json(r) for r in reports]}, indent=2))
    else:
        _print_reports(reports)
    failing = [r for r in reports if r.status.failing]
    if failing:
        names = ", ".join(f"{r.group} is {r.status.value}" for r in failing)
        raise fail(f"consumer group {names}", EXIT_GROUP_FAILING)


def _report_json(report: Any) -> dict[str, Any]:
    return {
        "group": report.group,
        "status": report.status.value,
        "members": report.members,
        "lag": sum(r.lag for r in report.rows),
        "partitions": [
            {
                "topic": r.topic,
                "partition": r.partition,
                "committed": r.committed,
                "log_end": r.log_end,
                "lag": r.lag,
                "lag_seconds": None if r.lag_seconds is None else round(r.lag_seconds, 3),
                "status": report.statuses[(r.topic, r.partition)].value,
            }
            for r in report.rows
        ],
    }


def _print_reports(reports: list[Any]) -> None:
    console = Console()
    for table in lag_tables(reports):
        console.print(table)


def _watch_live(
    reader: Any,
    groups: list[str],
    events: str,
    ingest_group: str,
    interval: float,
    window: float,
    count: int | None,
) -> None:
    """`abacus lag --watch`: Ctrl-C is the normal way out (exit 0). It only raises a flag,
    seen between refreshes: an interrupt inside the Kafka client's poll could leave it
    unable to close (seen once: the command still running 30 s after Ctrl-C)."""
    # The ingest group always reports the events topic, even before a commit.
    topics = {g: [events] if g == ingest_group else [] for g in groups}
    stop = threading.Event()

    def wait(seconds: float) -> None:
        if stop.wait(seconds):
            raise _Stopped

    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        with contextlib.suppress(_Stopped):
            watch_live(
                reader, topics, interval_s=interval, window_s=max(window, interval), count=count,
                sleep=wait,
            )  # fmt: skip
    finally:
        signal.signal(signal.SIGINT, previous)


class _Stopped(Exception):
    """Ctrl-C during `abacus lag --watch`."""


def _readable(settings: AbacusSettings, topic: str) -> tuple[list[DeadLetterRecord], int]:
    """The dead letters, without those of deleted students (the deny-list on its topic):
    their bytes stay on the topic until its retention, but are never shown or replayed."""
    records = read_dead_letters(settings.broker, topic)
    deny = read_deny(settings)
    if not len(deny):
        return records, 0
    now = datetime.now(UTC)
    kept = [r for r in records if not deny.record_denied(r.key, r.value, now)]
    return kept, len(records) - len(kept)


@dlq_app.command("list")
def dlq_list(
    limit: Annotated[int, typer.Option(min=1, help="Show the newest N records")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines for machines")] = False,
) -> None:
    """Dead-lettered records: source partition/offset, reason, failed_at, size."""
    settings = AbacusSettings()
    topic = settings.topics.name(settings.topics.dead_letter)
    try:
        records, hidden = _readable(settings, topic)
    except AbacusError as exc:
        raise fail(str(exc)) from exc
    if hidden:
        typer.echo(f"{hidden} dead letter(s) of deleted students not shown", err=True)
    shown = records[-limit:]
    if as_json:
        for r in shown:
            doc = {
                "partition": r.partition,
                "offset": r.offset,
                "source_partition": r.source_partition,
                "source_offset": r.source_offset,
                "reason": r.reason,
                "failed_at": r.failed_at,
                "size": len(r.value),
            }
            typer.echo(json.dumps(doc))
        return
    table = Table(title=f"{topic}: {len(shown)} of {len(records)} record(s), newest last")
    for name in ("offset", "source partition", "source offset", "reason", "failed at", "size"):
        table.add_column(name, justify="left" if name in ("reason", "failed at") else "right")
    for r in shown:
        table.add_row(
            f"{r.partition}:{r.offset}",
            str(r.source_partition),
            str(r.source_offset),
            r.reason,
            r.failed_at,
            str(len(r.value)),
        )
    Console().print(table)


@dlq_app.command("replay")
def dlq_replay(
    reason_contains: Annotated[
        str | None, typer.Option("--reason-contains", help="Only records whose reason has TEXT")
    ] = None,
    replay_all: Annotated[bool, typer.Option("--all", help="Every dead-lettered record")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be sent")] = False,
) -> None:
    """Resubmit dead-lettered records (original key and bytes) to the events topic, tagged
    with an `abacus.replayed_from` header; events count once by event_id, so a replay of
    something already stored changes nothing. Records still bad come back to the DLQ."""
    if not replay_all and reason_contains is None:
        raise fail("choose --all or --reason-contains TEXT", 2)
    settings = AbacusSettings()
    topics = settings.topics
    dlq_topic, events_topic = topics.name(topics.dead_letter), topics.name(topics.events)
    try:
        records, hidden = _readable(settings, dlq_topic)
        chosen = [r for r in records if reason_contains is None or reason_contains in r.reason]
        # Oversized dead letters are pointers: their bytes come from the source offset.
        epoch = read_meta(settings).epoch if any(r.info.is_pointer for r in chosen) else None
        chosen, gone = resolve_pointers(settings.broker, chosen, events_topic, epoch)
        sent = chosen if dry_run else replay(settings.broker, chosen, events_topic)
    except AbacusError as exc:
        raise fail(str(exc)) from exc
    if gone:
        typer.echo(
            f"skipped {len(gone)} oversized dead letter(s) whose source record is no longer on"
            f" {events_topic} (an older broker epoch, or past retention); their bytes are in"
            " the ClickHouse table dead_letters"
        )
    verb = "would replay" if dry_run else "replayed"
    by_partition: dict[int, list[int]] = {}
    for r in sent:
        by_partition.setdefault(r.partition, []).append(r.offset)
    where = "; ".join(f"{dlq_topic}[{p}] {_range_text(o)}" for p, o in sorted(by_partition.items()))
    typer.echo(f"{verb} {len(sent)} of {len(records)} dead-lettered record(s) to {events_topic}")
    if hidden:
        typer.echo(f"skipped {hidden} dead letter(s) of deleted students")
    if where:
        typer.echo(f"from {where}")
