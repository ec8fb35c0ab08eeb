"""The host's speed in a benchmark's windows: pinned probes, and what a window's probe
time does to a ratio (abacus/bench/host_speed.py)."""

from __future__ import annotations

import os
import time

import pytest

from abacus.bench.host_speed import _MAX_PROBES, HostSpeed, at_equal_speed, runs_ms, window_ms

SAMPLES = [(100.0, 10.0), (100.5, 20.0), (101.0, 30.0), (102.0, 90.0)]


def test_a_window_is_the_mean_of_the_units_started_in_it() -> None:
    assert window_ms(SAMPLES, 100.0, 101.0) == pytest.approx(20.0)
    assert window_ms(SAMPLES, 100.2, 100.6) == 20.0
    assert window_ms(SAMPLES, 101.1, 101.9) is None  # no probe ran in it


def test_a_side_of_several_windows_weighs_each_by_its_time() -> None:
    assert runs_ms([(10.0, 1.0), (14.0, 3.0)]) == pytest.approx(13.0)
    assert runs_ms([(10.0, 1.0), (None, 3.0)]) == 10.0
    assert runs_ms([(None, 1.0)]) is None


def test_a_ratio_at_equal_speed_undoes_the_speed_difference_of_the_windows() -> None:
    # The side ran on CPUs 1.5 times slower than its baseline's: at equal speed its rate
    # would have been 1.5 times higher.
    assert at_equal_speed(0.6, 21.0, 14.0) == pytest.approx(0.9)
    assert at_equal_speed(0.6, 14.0, 14.0) == pytest.approx(0.6)
    assert at_equal_speed(0.6, None, 14.0) is None
    assert at_equal_speed(0.6, 21.0, None) is None


def test_a_probe_runs_pinned_on_every_cpu_and_stops_with_the_benchmark() -> None:
    cpus = sorted(os.sched_getaffinity(0))[:_MAX_PROBES]  # (all of them on 2 cores)
    started = time.time()
    with HostSpeed(every_s=0.01) as host:
        while len(host.samples()) < 10 * len(cpus) and time.time() - started < 30:
            time.sleep(0.05)
        probes = list(host._probes)
        assert [os.sched_getaffinity(p.pid) for p in probes] == [{cpu} for cpu in cpus]
        samples = host.samples()
        window = host.window_ms([started, time.time()])
        folder = host._dir
    assert len(samples) >= 10 * len(cpus)
    assert all(started - 1 <= wall <= time.time() and ms > 0 for wall, ms in samples)
    assert window is not None
    assert window > 0
    assert all(p.poll() is not None for p in probes)  # killed on the way out
    assert not folder.exists()
