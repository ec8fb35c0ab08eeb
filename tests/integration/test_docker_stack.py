"""The same pipeline against production parts: Kafka and ClickHouse server images."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from abacus.events.codec import encode_event
from tests.marks import requires_docker
from tests.support.events import one_of_each
from tests.support.stack import Stack, wait_until

pytestmark = [pytest.mark.docker, requires_docker]


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[str, str]]:
    from testcontainers.community.clickhouse import ClickHouseContainer
    from testcontainers.community.kafka import KafkaContainer

    with (
        KafkaContainer("confluentinc/cp-kafka:7.6.1").with_kraft() as kafka,
        ClickHouseContainer("clickhouse/clickhouse-server:24.8") as clickhouse,
    ):
        host = clickhouse.get_container_host_ip()
        port = clickhouse.get_exposed_port(8123)
        url = f"http://{clickhouse.username}:{clickhouse.password}@{host}:{port}"
        yield kafka.get_bootstrap_server(), url


def test_events_reach_clickhouse_server_through_kafka(
    servers: tuple[str, str], tmp_path: Path
) -> None:
    bootstrap, url = servers
    stack = Stack(bootstrap, tmp_path / "home", extra_env={"ABACUS_CLICKHOUSE__URL": url})
    try:
        events = one_of_each(student_id="S9001")
        stack.start_worker(ready_timeout=120)
        from kafka import KafkaProducer

        producer = KafkaProducer(bootstrap_servers=bootstrap)
        for e in events:
            producer.send(stack.topic("events"), key=b"S9001", value=encode_event(e))
        producer.flush()
        wait_until(
            lambda: stack.metric_sum("abacus_events_accepted_total") >= len(events),
            120,
            "events accepted",
        )
        rows = stack.query("SELECT toString(event_id) FROM abacus.events FINAL")
        assert {r[0] for r in rows} == {e["event_id"] for e in events}
    finally:
        stack.close()
