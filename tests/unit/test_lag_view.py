"""`abacus lag --watch` rendering: refreshes, statuses over the window, broker errors shown
and retried (a fake reader and a recording console, no sockets)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from rich.console import Console

from abacus.cli.lag_view import watch_live
from abacus.errors import StackError
from consumers.lag import PartitionLag

GROUP = "abacus-ingest"


class ScriptedReader:
    def __init__(self, steps: list[tuple[int, int] | Exception]) -> None:
        self.steps = steps
        self.calls = 0

    def snapshot_groups(
        self, groups: Mapping[str, Iterable[str]], *, with_seconds: bool = True
    ) -> dict[str, list[PartitionLag]]:
        self.calls += 1
        step = self.steps.pop(0)
        if isinstance(step, Exception):
            raise step
        committed, end = step
        return {GROUP: [PartitionLag(GROUP, "events", 0, committed, end, 0, 1.5)]}

    def members(self, group: str) -> int:
        return 1


def run(reader: ScriptedReader, count: int, window_s: float = 60) -> str:
    console = Console(record=True, width=120, force_terminal=False)
    refreshes = watch_live(
        reader,  # type: ignore[arg-type]
        {GROUP: ["events"]},
        interval_s=0.01,
        window_s=window_s,
        count=count,
        console=console,
        sleep=lambda _s: None,
    )
    assert refreshes == count
    return console.export_text()


def test_each_refresh_samples_again_and_judges_the_window() -> None:
    reader = ScriptedReader([(5, 9), (5, 12), (5, 20)])
    text = run(reader, 3)
    assert reader.calls == 3
    assert "refresh 3" in text
    assert f"{GROUP}: STALLED (1 member(s))" in text  # lag, commit frozen over the window
    assert "20" in text  # the latest log end
    assert "15" in text  # and lag


def test_a_broker_error_is_shown_and_the_next_refresh_recovers() -> None:
    down = StackError("broker 127.0.0.1:1 unreachable")
    failing = run(ScriptedReader([(5, 5), down]), 2)
    assert "broker 127.0.0.1:1 unreachable (retrying every 0.01 s)" in failing
    assert f"{GROUP}: OK" in failing  # the last good sample is still shown
    recovered = run(ScriptedReader([(5, 5), down, (7, 7)]), 3)
    assert "unreachable" not in recovered
    assert "refresh 3" in recovered
