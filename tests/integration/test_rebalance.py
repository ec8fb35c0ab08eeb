"""Two workers in one consumer group on the embedded broker: a second worker joins and the
first leaves while events keep coming. Neither crashes on a commit for a partition it no
longer holds, every event is stored, and the group commits up to the log end.

Embedded mode allows one chDB per process, so each worker has its own home (its own
store): together they hold every event, each store at most once per event_id.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from kafka import KafkaProducer

from abacus.embedded.broker import EmbeddedBroker, free_port
from abacus.events.codec import encode_event
from tests.support.events import sample_event
from tests.support.produce import committed_offsets
from tests.support.stack import Stack, wait_until

RATE = 400  # records/s: batches are in flight at every moment a rebalance can hit


class Producer(threading.Thread):
    """Sends one event per record at a steady rate until stopped; keeps what it sent."""

    def __init__(self, stack: Stack) -> None:
        super().__init__(daemon=True)
        self.stack = stack
        self.sent: set[str] = set()
        self.ends: dict[int, int] = {}
        self.halt = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            producer = KafkaProducer(bootstrap_servers=self.stack.bootstrap, acks="all")
            futures = []
            started, n = time.monotonic(), 0
            while not self.halt.is_set():
                n += 1
                event = sample_event("points_earned", student_id=f"S{n % 97}")
                futures.append(
                    producer.send(
                        self.stack.topic("events"),
                        key=event["student_id"].encode(),
                        value=encode_event(event),
                    )
                )
                self.sent.add(event["event_id"])
                time.sleep(max(0.0, started + n / RATE - time.monotonic()))
            producer.flush()
            for future in futures:
                meta = future.get(timeout=30)
                self.ends[meta.partition] = max(self.ends.get(meta.partition, 0), meta.offset + 1)
            producer.close()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc


@pytest.fixture
def pair(broker: EmbeddedBroker, tmp_path: Path) -> Iterator[tuple[Stack, Stack]]:
    # A stopping worker drains until its lag is 0, which never comes while the producer
    # runs; the partitions go to the other worker anyway.
    first = Stack(broker.bootstrap, tmp_path / "first", {"ABACUS_DRAIN_TIMEOUT_S": "2"})
    # Same app id and topics (the tag names both), its own home, store and web port.
    second = replace(first, home=tmp_path / "second", web_port=free_port(), worker=None)
    second.extra_env = dict(first.extra_env)
    yield first, second
    first.close()
    second.close()


def stored_ids(stack: Stack) -> tuple[list[str], int]:
    """Distinct event ids in the store (FINAL), and how many rows FINAL returns."""
    rows = stack.query("SELECT toString(event_id) FROM abacus.events FINAL")
    ids = [r[0] for r in rows]
    return sorted(set(ids)), len(ids)


def crashes(stack: Stack) -> list[str]:
    """Lines where the worker (or one of its services) crashed."""
    text = (stack.home / "worker.log").read_text(errors="replace")
    return [line for line in text.splitlines() if "Crashed reason" in line]


def test_workers_joining_and_leaving_the_group_lose_nothing_and_never_crash(
    pair: tuple[Stack, Stack],
) -> None:
    first, second = pair
    first.start_worker()
    producer = Producer(first)
    producer.start()
    wait_until(lambda: first.metric_sum("abacus_events_accepted_total") > 200, 30, "first storing")

    # Rebalance: the group splits the events partitions. (Faust gives every single-partition
    # topic of the agents' group to one member, so the second worker holds none of them
    # and its /readyz says so; /healthz is up.)
    second.start_worker(path="/healthz")
    wait_until(
        lambda: second.metric_sum("abacus_events_accepted_total") > 200, 60, "second storing"
    )
    assert first.worker is not None
    assert first.worker.poll() is None, first.log_tail()
    time.sleep(2)

    assert first.stop_worker() == 0, first.log_tail()  # rebalance: the second takes all
    time.sleep(3)
    producer.halt.set()
    producer.join(timeout=60)
    assert producer.error is None
    wait_until(
        lambda: all(committed_offsets(second).get(p, 0) >= end for p, end in producer.ends.items()),
        90,
        "the group to commit every produced offset",
        every=0.5,
    )
    assert second.worker is not None
    assert second.worker.poll() is None, second.log_tail()
    assert second.stop_worker() == 0, second.log_tail()

    ids_first, rows_first = stored_ids(first)
    ids_second, rows_second = stored_ids(second)
    assert rows_first == len(ids_first)
    assert rows_second == len(ids_second)
    assert ids_first, "the first worker stored nothing"
    assert ids_second, "the second worker never held a partition"
    missing = producer.sent - set(ids_first) - set(ids_second)
    assert not missing, f"{len(missing)} of {len(producer.sent)} events stored by neither worker"
    assert crashes(first) == crashes(second) == []
