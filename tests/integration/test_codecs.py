"""A producer nobody here wrote (librdkafka, through confluent-kafka) with every codec Kafka
defines, idempotent and transactional: every consumer reads it, every event counts once.

Consumers covered: ingest (aiokafka), the roster agent (Faust on aiokafka), the dead-letter
tools and the lag reader (kafka-python).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from abacus.embedded.broker import EmbeddedBroker
from abacus.events.codec import encode_batch, encode_event, encode_json
from abacus.roster.records import config_value
from tests.integration.test_aggregation import EXAMPLES
from tests.support.events import sample_event
from tests.support.produce import wait_consumed
from tests.support.stack import Stack, wait_until

CODECS = ("none", "gzip", "snappy", "lz4", "zstd")


@pytest.fixture(scope="module")
def stack(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(broker.bootstrap, tmp_path_factory.mktemp("codecs") / "home")
    s.extra_env["ABACUS_INGEST_PROCESSES"] = "1"
    s.start_worker()
    yield s
    s.close()


def _producer(stack: Stack, codec: str, transactional: bool) -> Producer:
    conf: dict[str, Any] = {
        "bootstrap.servers": stack.bootstrap,
        "compression.type": codec,
        "enable.idempotence": True,
        "linger.ms": 20,
    }
    if transactional:
        conf["transactional.id"] = f"{stack.tag}-{codec}"
    return Producer(conf)


def _send(
    producer: Producer, topic: str, records: list[tuple[bytes, bytes]], transactional: bool
) -> dict[int, int]:
    """Produce and wait for every delivery; return the next offset per partition."""
    ends: dict[int, int] = {}
    errors: list[Any] = []

    def delivered(err: Any, msg: Any) -> None:
        if err is not None:
            errors.append(err)
        else:
            ends[msg.partition()] = max(ends.get(msg.partition(), 0), msg.offset() + 1)

    if transactional:
        producer.init_transactions(30)
        producer.begin_transaction()
    for key, value in records:
        producer.produce(topic, key=key, value=value, on_delivery=delivered)
    if transactional:
        producer.commit_transaction(30)
    assert producer.flush(30) == 0
    assert errors == []
    return ends


def _records_for(student: str) -> tuple[list[dict[str, Any]], list[tuple[bytes, bytes]]]:
    """12 events in 9 records (Avro, JSON, one batch record) under one key: librdkafka
    sends them as one compressed message set (it leaves a batch uncompressed when that is
    no smaller, which a single small record may be)."""
    events = [sample_event("points_earned", student_id=student, points=i) for i in range(12)]
    records = [(student.encode(), encode_event(e)) for e in events[:4]]
    records += [(student.encode(), encode_json(e)) for e in events[4:8]]
    records.append((student.encode(), encode_batch(events[8:])))
    return events, records


def test_the_agents_and_the_dead_letter_tools_read_every_codec(stack: Stack) -> None:
    from abacus.district import load_district_config

    config = load_district_config(EXAMPLES / "district.toml", district_id="codec-district")
    for codec in CODECS:
        producer = _producer(stack, codec, transactional=False)
        # The roster agent (Faust on aiokafka) reads the compacted district-config topic.
        value = config_value(config, f"import-{codec}", 1_700_000_000_000 + len(codec))
        _send(producer, stack.topic("district-config"), [(b"codec-district", value)], False)
        # kafka-python reads the dead-letter topic (`abacus dlq list`).
        _send(producer, stack.topic("events-dlq"), [(codec.encode(), codec.encode() * 50)], False)
    key = "abacus_roster_records_total{kind=district_config,outcome=stored}"
    wait_until(lambda: stack.metrics().get(key, 0) >= len(CODECS), 60, "configs stored")
    listed = stack.run("dlq", "list", "--json").stdout.splitlines()
    assert sorted(json.loads(line)["size"] for line in listed) == sorted(
        len(c) * 50 for c in CODECS
    )


def test_every_codec_idempotent_and_transactional_is_stored_exactly_once(stack: Stack) -> None:
    # Last in this module: it stops the shared worker to read the store.
    sent: list[dict[str, Any]] = []
    ends: dict[int, int] = {}
    for number, codec in enumerate(CODECS):
        for transactional in (False, True):
            events, records = _records_for(f"S{number}{int(transactional)}")
            producer = _producer(stack, codec, transactional)
            for p, end in _send(producer, stack.topic("events"), records, transactional).items():
                ends[p] = max(ends.get(p, 0), end)
            sent += events
    wait_consumed(stack, ends, timeout=120)
    assert stack.worker is not None
    assert stack.worker.poll() is None, "the worker read every codec and stayed up"
    assert stack.metric_sum("abacus_dead_letters_total") == 0
    # kafka-python (lag) reads the compressed events topic too.
    lag = json.loads(stack.run("lag", "--json", "--window", "1", "--samples", "2").stdout)
    ingest = next(g for g in lag["groups"] if g["group"] == stack.settings.ingest_group)
    assert ingest["lag"] == 0
    assert stack.stop_worker() == 0
    rows = stack.query("SELECT toString(event_id), count() FROM abacus.events GROUP BY event_id")
    assert dict(rows) == {str(e["event_id"]): 1 for e in sent}


def test_a_codec_that_cannot_be_read_stops_abacus_up_once_with_the_fix(
    stack_factory: Callable[..., Stack], tmp_path: Path
) -> None:
    # As on a machine without the codec libraries: cramjam (aiokafka's snappy, lz4, zstd)
    # cannot be imported by the worker.
    fake = tmp_path / "no-cramjam"
    (fake / "cramjam").mkdir(parents=True)
    (fake / "cramjam" / "__init__.py").write_text("raise ImportError('hidden by the test')\n")
    s = stack_factory(PYTHONPATH=str(fake), ABACUS_INGEST_PROCESSES="0")
    s.start_up()  # against the session broker: `abacus up` supervises the worker only
    # The same records the test above stores: this proves they really are compressed.
    _, records = _records_for("S1")
    _send(_producer(s, "snappy", transactional=False), s.topic("events"), records, False)
    assert s.worker is not None
    assert s.worker.wait(timeout=120) == 78, "stopped for good, not restarted"
    s.worker = None
    log = s.log_tail(400)
    assert log.count("worker started") == 1, "never a crash loop"
    line = next(ln for ln in log.splitlines() if "cannot read the events topic" in ln)
    assert "snappy" in line
    assert "cramjam" in line
    assert "not restarting" in log
