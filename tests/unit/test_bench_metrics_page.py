"""`abacus bench`'s reading of a /metrics page: counters, gauges and histograms, one parse."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from abacus.bench.ingest import _gauge, _histogram, _metric


def _page(tmp_path: Path) -> str:
    """A page as the worker's /metrics writes it, served from a file:// URL."""
    registry = CollectorRegistry()
    Counter("abacus_pending_events_resolved", "x", registry=registry).inc(3)
    labelled = Counter("abacus_things", "x", ["kind"], registry=registry)
    labelled.labels("a").inc(2)
    labelled.labels("b").inc(5)
    Gauge("abacus_rollups_behind", "x", registry=registry).set(0)
    hist = Histogram("abacus_ingest_freshness_seconds", "x", buckets=(0.5, 1), registry=registry)
    for seconds in (0.2, 0.7, 0.8, 3.0):
        hist.observe(seconds)
    path = tmp_path / "metrics"
    path.write_bytes(generate_latest(registry))
    return path.as_uri()


def test_counters_sum_their_samples_and_a_missing_one_is_zero(tmp_path: Path) -> None:
    url = _page(tmp_path)
    assert _metric(url, "abacus_pending_events_resolved") == 3
    assert _metric(url, "abacus_things") == 7  # every label set, not `_created`
    assert _metric(url, "abacus_rollups_behind") == 0
    assert _metric(url, "abacus_nothing") == 0


def test_a_gauge_of_zero_is_not_a_missing_gauge(tmp_path: Path) -> None:
    url = _page(tmp_path)
    assert _gauge(url, "abacus_rollups_behind") == 0.0
    assert _gauge(url, "abacus_nothing") is None


def test_a_histogram_reads_as_cumulative_buckets(tmp_path: Path) -> None:
    url = _page(tmp_path)
    assert _histogram(url, "abacus_ingest_freshness_seconds") == [
        (0.5, 1.0),
        (1.0, 3.0),
        (float("inf"), 4.0),
    ]
    assert _histogram(url, "abacus_nothing") == []
