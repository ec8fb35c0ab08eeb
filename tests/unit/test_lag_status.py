"""Burrow-style status of a consumer group over a window of lag samples."""

from __future__ import annotations

import pytest

from consumers.lag_status import GroupStatus, Offsets, WindowSample, evaluate, partition_status

OK, LAGGING, REWIND, STALLED, STOPPED = (
    GroupStatus.OK,
    GroupStatus.LAGGING,
    GroupStatus.REWIND,
    GroupStatus.STALLED,
    GroupStatus.STOPPED,
)


def window(*pairs: tuple[int, int]) -> list[Offsets]:
    """(committed, log_end) per sample, oldest first."""
    return [Offsets(c, e) for c, e in pairs]


@pytest.mark.parametrize(
    ("samples", "members", "expected"),
    [
        # caught up throughout
        (window((10, 10), (10, 10), (10, 10)), 1, OK),
        # lag seen between commits but zero at one sample: keeping up
        (window((10, 10), (10, 15), (15, 20)), 1, OK),
        # commits advance and lag shrinks
        (window((0, 100), (40, 110), (90, 120)), 1, OK),
        # commits advance, lag steady: keeping pace
        (window((0, 50), (10, 60), (20, 70)), 1, OK),
        # commits advance but lag grows
        (window((0, 50), (10, 80), (20, 120)), 1, LAGGING),
        # commits frozen with lag and a live member: stalled (even with no new records)
        (window((5, 20), (5, 20), (5, 20)), 2, STALLED),
        (window((5, 20), (5, 30), (5, 40)), 1, STALLED),
        # lag and nobody in the group: stopped, whatever the commits did
        (window((5, 20), (5, 20)), 0, STOPPED),
        (window((10, 10), (10, 12)), 0, STOPPED),
        # no lag and nobody in the group: nothing to do, OK
        (window((7, 7), (7, 7)), 0, OK),
        # a single sample cannot show a stall
        (window((5, 20)), 1, OK),
        # the committed offset went backwards (an offset reset): rewind, even while the
        # re-read already caught up again, and whatever the lag did
        (window((100, 100), (0, 100), (100, 100)), 1, REWIND),
        (window((50, 80), (40, 90), (60, 95)), 1, REWIND),
        (window((50, 80), (40, 80), (40, 80)), 1, REWIND),
        # ... but lag with nobody in the group is still stopped
        (window((50, 80), (40, 80)), 0, STOPPED),
        # equal commits are not a rewind; a later commit below an earlier peak is
        (window((10, 10), (10, 10)), 1, OK),
        (window((10, 30), (30, 30), (20, 30)), 1, REWIND),
        ([], 1, OK),
    ],
)
def test_partition_status(samples: list[Offsets], members: int, expected: GroupStatus) -> None:
    assert partition_status(samples, members) is expected


def test_lag_is_never_negative() -> None:
    assert Offsets(committed=12, log_end=10).lag == 0


def test_the_group_is_as_bad_as_its_worst_partition() -> None:
    a, b, c = ("events", 0), ("events", 1), ("roster", 0)
    samples = [
        WindowSample(1, {a: Offsets(0, 0), b: Offsets(0, 50), c: Offsets(3, 9)}),
        WindowSample(1, {a: Offsets(0, 0), b: Offsets(10, 80), c: Offsets(3, 9)}),
        WindowSample(1, {a: Offsets(0, 0), b: Offsets(20, 120), c: Offsets(3, 9)}),
    ]
    status, per_partition = evaluate(samples)
    assert per_partition == {a: OK, b: LAGGING, c: STALLED}
    assert status is STALLED
    assert status.failing


def test_members_are_judged_at_the_latest_sample() -> None:
    key = ("events", 0)
    leaving = [WindowSample(1, {key: Offsets(0, 5)}), WindowSample(0, {key: Offsets(0, 5)})]
    joining = [WindowSample(0, {key: Offsets(0, 5)}), WindowSample(1, {key: Offsets(5, 5)})]
    assert evaluate(leaving)[0] is STOPPED
    assert evaluate(joining)[0] is OK


def test_a_partition_that_appears_mid_window_is_judged_on_its_own_samples() -> None:
    old, new = ("events", 0), ("events", 1)
    samples = [
        WindowSample(1, {old: Offsets(0, 0)}),
        WindowSample(1, {old: Offsets(0, 0), new: Offsets(0, 4)}),
        WindowSample(1, {old: Offsets(0, 0), new: Offsets(0, 4)}),
    ]
    assert evaluate(samples) == (STALLED, {old: OK, new: STALLED})


def test_no_samples_is_ok_and_only_stalled_or_stopped_fail() -> None:
    assert evaluate([]) == (OK, {})
    assert [s.failing for s in GroupStatus] == [False, False, False, True, True]


def test_rewind_ranks_between_lagging_and_stalled() -> None:
    assert [s.value for s in sorted(GroupStatus, key=lambda s: s.severity)] == [
        "ok",
        "lagging",
        "rewind",
        "stalled",
        "stopped",
    ]
    a, b = ("events", 0), ("events", 1)
    samples = [
        WindowSample(1, {a: Offsets(10, 20), b: Offsets(0, 50)}),
        WindowSample(1, {a: Offsets(5, 25), b: Offsets(10, 80)}),
    ]
    assert evaluate(samples) == (REWIND, {a: REWIND, b: LAGGING})
