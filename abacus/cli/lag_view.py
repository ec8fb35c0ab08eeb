"""`abacus lag` on a terminal: the lag tables, and `--watch`, a live-refreshing view."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from abacus.errors import AbacusError
from consumers.lag import GroupReport, LagReader
from consumers.lag_history import GroupSample, LagHistory

__all__ = ["lag_tables", "watch_live"]

_STYLE = {"ok": "green", "lagging": "yellow", "rewind": "magenta"}  # others: bold red


def lag_tables(reports: Iterable[GroupReport]) -> list[Table]:
    """One table per group: a row per topic/partition, the status in the title."""
    tables = []
    for report in reports:
        table = Table(
            title=f"{report.group}: {report.status.value.upper()} ({report.members} member(s))"
        )
        for name in ("topic", "partition", "committed", "log end", "lag", "lag s", "status"):
            table.add_column(name, justify="left" if name in ("topic", "status") else "right")
        for r in report.rows:
            seconds = "-" if r.lag_seconds is None else f"{r.lag_seconds:.1f}"
            committed = "-" if r.committed is None else str(r.committed)
            status = report.statuses.get((r.topic, r.partition))
            label = Text(status.value, style=_STYLE.get(status.value, "bold red")) if status else ""
            table.add_row(
                r.topic, str(r.partition), committed, str(r.log_end), str(r.lag), seconds, label
            )
        tables.append(table)
    return tables


def _reports(history: LagHistory, groups: Iterable[str], window_s: float) -> list[GroupReport]:
    reports = []
    for group in groups:
        last = history.latest(group)
        if last is None:
            continue
        status, statuses = history.status(group, window_s)
        reports.append(GroupReport(group, status, last.members, list(last.rows), statuses))
    return reports


def _view(reports: list[GroupReport], caption: str, problem: str | None) -> RenderableType:
    parts: list[RenderableType] = list(lag_tables(reports))
    if problem:
        parts.append(Text(problem, style="bold red"))
    parts.append(Text(caption, style="dim"))
    return Group(*parts)


def watch_live(
    reader: LagReader,
    groups: Mapping[str, Iterable[str]],
    *,
    interval_s: float,
    window_s: float,
    count: int | None = None,
    console: Console | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Refresh a table per group every ``interval_s`` until Ctrl-C (or ``count`` refreshes);
    statuses are judged over the last ``window_s`` seconds of samples, as `abacus lag` does.
    A failed look (broker gone) is shown and retried at the next refresh. Returns the
    number of refreshes."""
    groups = {g: list(t) for g, t in groups.items()}
    history = LagHistory(max(2, math.ceil(window_s / interval_s) + 1))
    refreshes = 0
    problem: str | None = None
    with Live(console=console or Console(), auto_refresh=False) as live:
        while count is None or refreshes < count:
            started = time.monotonic()
            try:
                at = time.time()
                rows = reader.snapshot_groups(groups)
                for group in groups:
                    history.add(GroupSample(at, group, reader.members(group), rows[group]))
                problem = None
            except AbacusError as exc:
                problem = f"{exc} (retrying every {interval_s:g} s)"
            refreshes += 1
            caption = (
                f"refresh {refreshes} at {datetime.now().astimezone():%H:%M:%S} · every "
                f"{interval_s:g} s · status over the last {window_s:g} s · Ctrl-C to quit"
            )
            live.update(_view(_reports(history, groups, window_s), caption, problem), refresh=True)
            if count is not None and refreshes >= count:
                break
            sleep(max(0.0, interval_s - (time.monotonic() - started)))
    return refreshes
