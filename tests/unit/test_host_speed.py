"""The host's speed in a benchmark's windows: pinned probes, and what a window's probe
time does to a ratio (abacus/bench/host_speed.py)."""

from __future__ import annotations

import os
import time

import pytest

from abacus.bench.host_speed import (
    _MAX_PROBES,
    HostSpeed,
    at_equal_speed,
    cpu_ticks,
    runs_ms,
    window_ms,
)

SAMPLES = [(100.0, 10.0, 1.0), (100.5, 20.0, 0.8), (101.0, 30.0, 0.5), (102.0, 90.0, 1.0)]


def test_a_window_is_the_mean_of_the_units_started_in_it() -> None:
    assert window_ms(SAMPLES, 100.0, 101.0) == pytest.approx(20.0)
    assert window_ms(SAMPLES, 100.2, 100.6) == 20.0
    assert window_ms(SAMPLES, 101.1, 101.9) is None  # no probe ran in it


def test_a_window_counts_the_units_on_a_busy_cpu_when_there_are_any() -> None:
    # A probe waking on an idle vCPU reads it slower than a busy one runs: a loader
    # keeping one CPU busy must not look like a slower host than a worker keeping two.
    samples = [(100.0, 10.0, 1.0), (100.0, 14.0, 0.0), (100.1, 12.0, 0.5), (100.1, 15.0, 0.4)]
    assert window_ms(samples, 100.0, 100.1) == pytest.approx(11.0)
    # With no CPU busy in the window, every unit in it counts.
    idle = [(100.0, 14.0, 0.0), (100.1, 16.0, 0.2)]
    assert window_ms(idle, 100.0, 100.1) == pytest.approx(15.0)


def test_a_cpus_busy_ticks_leave_out_idle_and_iowait() -> None:
    stat = (
        "cpu  30 0 20 900 10 0 0 0 0 0\n"
        "cpu0 10 1 5 400 4 2 3 0 0 0\n"
        "cpu1 20 0 15 500 6 0 0 0 0 0\n"
        "intr 12345\n"
    )
    assert cpu_ticks(0, stat) == (21, 425)
    assert cpu_ticks(1, stat) == (35, 541)
    with pytest.raises(ValueError, match="cpu2"):
        cpu_ticks(2, stat)


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
    assert all(started - 1 <= wall <= time.time() and ms > 0 for wall, ms, _ in samples)
    assert all(0 <= busy <= 1 for _, _, busy in samples)
    assert window is not None
    assert window > 0
    assert all(p.poll() is not None for p in probes)  # killed on the way out
    assert not folder.exists()
