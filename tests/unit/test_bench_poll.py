"""How often `abacus bench ingest` reads a group's committed offsets while it waits for
the end: seldom while most of the topic is still to come, every 20 ms near the end."""

from __future__ import annotations

import pytest

from abacus.bench.ingest import next_poll_s


def test_before_the_first_commit_it_reads_every_50_ms() -> None:
    assert next_poll_s(0.3, 0.0, 0.0) == 0.05


def test_far_from_the_expected_end_it_reads_at_most_every_200_ms() -> None:
    # A tenth committed after 0.5 s: the end is expected at 5 s.
    assert next_poll_s(0.6, 0.1, 0.5) == 0.2


def test_it_reads_an_eighth_of_the_time_left_until_the_expected_end() -> None:
    # Half committed at 2 s: the end expected at 4 s; at 3.2 s, 0.8 s are left.
    assert next_poll_s(3.2, 0.5, 2.0) == pytest.approx(0.1)


@pytest.mark.parametrize("now", [3.99, 4.0, 4.5, 30.0])
def test_at_and_after_the_expected_end_it_reads_every_20_ms(now: float) -> None:
    assert next_poll_s(now, 0.5, 2.0) == 0.02


def test_an_end_sooner_than_expected_is_seen_within_a_seventh_of_the_gap() -> None:
    # The rate so far says 4 s; the records all committed at 3.3 s (0.7 s earlier). Walk
    # the reads from 2 s on: the first read at or after 3.3 s comes within 0.1 s of it.
    now, done, seen_at, end = 2.0, 0.5, 2.0, 3.3
    while now < end:
        now += next_poll_s(now, done, seen_at)
    assert now - end <= (4.0 - end) / 7
