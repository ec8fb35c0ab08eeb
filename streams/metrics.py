"""Prometheus metrics of one worker (prefix abacus_, base units, no student ids in labels)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Metrics"]


class Metrics:
    """The worker's counters, on a registry of its own so tests and apps never collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.events_accepted = Counter(
            "abacus_events_accepted", "Events stored, by type.", ["event_type"], registry=r
        )
        self.events_rejected = Counter(
            "abacus_events_rejected",
            "Events rejected to the dead-letter topic, by reason.",
            ["reason"],
            registry=r,
        )
        self.events_deduplicated = Counter(
            "abacus_events_deduplicated", "Events seen again with a known event_id.", registry=r
        )
        self.dead_letters = Counter(
            "abacus_dead_letters", "Records written to the dead-letter topic.", registry=r
        )
        self.batch_size = Histogram(
            "abacus_ingest_batch_records",
            "Records per ingest batch.",
            buckets=(1, 10, 100, 500, 1000, 2500, 5000, 10000, 50000),
            registry=r,
        )
        self.insert_seconds = Histogram(
            "abacus_clickhouse_insert_seconds", "ClickHouse insert latency.", registry=r
        )
        self.ready = Gauge(
            "abacus_ready", "1 once topics, tables and assignment are in place.", registry=r
        )
