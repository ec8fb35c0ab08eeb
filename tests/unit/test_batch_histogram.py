"""The freshness histogram counted a batch at a time exposes what one observation per age
would: the same series, bucket counts, count and sum."""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from streams.metrics import FRESHNESS_BUCKETS, BatchHistogram


def _samples(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    out = {}
    for family in registry.collect():
        for s in family.samples:
            if not s.name.endswith("_created"):
                out[(s.name, s.labels.get("le", ""))] = s.value
    return out


def test_an_empty_batch_changes_nothing() -> None:
    registry = CollectorRegistry()
    h = BatchHistogram("abacus_y_seconds", "doc", (0.5, 1.0), registry)
    h.observe_ages(10_000, [])
    h.observe_ages(10_000, [9_500, 8_000])  # ages 0.5 s and 2 s
    assert _samples(registry) == {
        ("abacus_y_seconds_bucket", "0.5"): 1.0,
        ("abacus_y_seconds_bucket", "1.0"): 1.0,
        ("abacus_y_seconds_bucket", "+Inf"): 2.0,
        ("abacus_y_seconds_count", ""): 2.0,
        ("abacus_y_seconds_sum", ""): 2.5,
    }


def test_batches_count_like_one_observation_per_age() -> None:
    """Record timestamps and a clock, as ingest observes freshness, give what one
    observation per age would: the same series, bucket counts (a bound is inclusive, le, in
    both), count and sum; a stamp after the clock (a producer's clock ahead) is an age of 0."""
    rng = random.Random(11)
    per_value, per_batch = CollectorRegistry(), CollectorRegistry()
    plain = Histogram("abacus_a_seconds", "doc", buckets=FRESHNESS_BUCKETS, registry=per_value)
    batched = BatchHistogram("abacus_a_seconds", "doc", FRESHNESS_BUCKETS, per_batch)
    for _ in range(30):
        whole = 1_796_000_000_000 + rng.randint(0, 10**6)
        now_ms = whole + rng.choice([0.0, rng.random()])  # whole: ages exactly on bounds
        stamps = [
            rng.choice(
                [
                    whole - round(1000 * rng.choice(FRESHNESS_BUCKETS)),  # on a bound
                    whole - rng.randint(0, 40_000),
                    whole + rng.randint(1, 5_000),  # ahead of the clock
                ]
            )
            for _ in range(rng.randint(0, 500))
        ]
        for stamp in stamps:
            plain.observe(max(0.0, (now_ms - stamp) / 1000))
        batched.observe_ages(now_ms, stamps)
    expected, got = _samples(per_value), _samples(per_batch)
    assert got.keys() == expected.keys()
    assert got[("abacus_a_seconds_count", "")] > 0
    for key, value in expected.items():
        if key[0] == "abacus_a_seconds_sum":
            assert abs(got[key] - value) < 1e-6 * max(1.0, value)
        else:
            assert got[key] == value, key
    text = generate_latest(per_batch).decode()
    assert "# TYPE abacus_a_seconds histogram" in text
    assert 'abacus_a_seconds_bucket{le="+Inf"}' in text
