"""The alert rules on a real Prometheus server scraping a real worker every second.

The server loads a FAST copy of deploy/prometheus/alerts.yml: every expression is the
file's, except that each alert's `for:` is cut to seconds (FOR below) and the lag alert's
threshold from 300 s to 2 s (THRESHOLDS); nothing else changes. promtool's unit tests
(tests/unit/test_prometheus_rules.py) cover the real durations and thresholds.

Consumption is paused for real: the worker's ingest processes get SIGSTOP. The worker keeps
fetching (up to its bounded queue), heartbeating and serving /metrics, but no batch is
prepared, so nothing is stored or committed while the producer keeps sending.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kafka import KafkaProducer

from abacus.embedded.broker import EmbeddedBroker
from abacus.events.codec import encode_event
from tests.marks import require_tool
from tests.support import deploy
from tests.support.events import sample_event
from tests.support.produce import wait_consumed
from tests.support.prometheus import PrometheusServer
from tests.support.stack import Stack, wait_until

LAG, STALLED = "AbacusConsumerLagHigh", "AbacusConsumerGroupStalled"
DEAD_LETTERS, REJECT_RATIO = "AbacusDeadLetters", "AbacusRejectRatioHigh"
# Alerts this module makes fire on purpose; any other one pending or firing is a failure.
PROVOKED = {LAG, STALLED, DEAD_LETTERS, REJECT_RATIO}
# `for:` per alert in the fast copy (default 1s); 3 s keeps "pending" observable.
FOR = {LAG: "3s", STALLED: "3s"}
# (text in the file's expression, replacement), exactly once per listed alert.
THRESHOLDS = {LAG: ("> 300", "> 2")}


def fast_rules(dest: Path) -> Path:
    doc = deploy.load_yaml(deploy.RULES)
    for group in doc["groups"]:
        for rule in group["rules"]:
            if "alert" not in rule:
                continue
            rule["for"] = FOR.get(rule["alert"], "1s")
            if rule["alert"] in THRESHOLDS:
                old, new = THRESHOLDS[rule["alert"]]
                assert rule["expr"].count(old) == 1, (rule["alert"], rule["expr"])
                rule["expr"] = rule["expr"].replace(old, new)
    dest.write_text(yaml.safe_dump(doc, sort_keys=False))
    return dest


@dataclass
class Live:
    stack: Stack
    prometheus: PrometheusServer

    @property
    def ingest_group(self) -> str:
        return self.stack.settings.ingest_group

    def send(self, records: list[tuple[bytes, bytes]]) -> dict[int, int]:
        """Send (key, value) records; the next offset per partition after them."""
        producer = KafkaProducer(bootstrap_servers=self.stack.bootstrap, acks="all")
        futures = [producer.send(self.stack.topic("events"), key=k, value=v) for k, v in records]
        producer.flush()
        ends: dict[int, int] = {}
        for future in futures:
            meta = future.get(timeout=30)
            ends[meta.partition] = max(ends.get(meta.partition, 0), meta.offset + 1)
        producer.close()
        return ends

    def unexpected_alerts(self) -> dict[str, set[str]]:
        return {n: s for n, s in self.prometheus.alert_states().items() if n not in PROVOKED}


@pytest.fixture(scope="module")
def live(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    binary = require_tool("prometheus")
    root = tmp_path_factory.mktemp("prometheus-alerts")
    stack = Stack(
        broker.bootstrap,
        root / "home",
        extra_env={
            "ABACUS_INGEST_PROCESSES": "1",
            "ABACUS_LAG_INTERVAL_S": "1",
            "ABACUS_LAG_WINDOW_S": "3",
        },
    )
    server: PrometheusServer | None = None
    try:
        stack.start_worker()
        rules = fast_rules(root / "alerts.fast.yml")
        server = PrometheusServer(
            binary, root / "prometheus", [f"127.0.0.1:{stack.web_port}"], rules
        )
        group = stack.settings.ingest_group
        wait_until(
            lambda: server.query(
                f'abacus_consumer_group_status{{group="{group}",status="ok"}} == 1'
            ),
            60,
            "Prometheus to scrape the worker's first lag sample",
        )
        yield Live(stack, server)
    finally:
        if server is not None:
            server.close()
        stack.close()


def _good(n: int, tag: str) -> list[tuple[bytes, bytes]]:
    events = [sample_event("problem_attempted", student_id=f"{tag}{i % 7:03d}") for i in range(n)]
    return [(e["student_id"].encode(), encode_event(e)) for e in events]


def _ingest_processes(worker_pid: int) -> list[int]:
    """The worker's spawned ingest processes (not multiprocessing's resource tracker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        if parent == worker_pid and b"spawn_main" in cmdline:
            found.append(int(entry.name))
    return found


def _states(live: Live, name: str) -> set[str]:
    return live.prometheus.alert_states().get(name, set())


def test_dead_letters_fire_the_dead_letter_and_reject_ratio_alerts(live: Live) -> None:
    rules = live.prometheus.rules()
    assert rules[DEAD_LETTERS]["state"] == "inactive"  # nothing bad has arrived yet
    assert rules[REJECT_RATIO]["state"] == "inactive"
    hostile = [
        (b"H001", b"\x00\x01 not an event"),
        (b"H002", b"\xc3\x01" + b"\xff" * 8 + b"unknown fingerprint"),
        (b"H003", b'{"event_type": "lesson_started"}'),
        (b"H004", bytes(range(256))),
    ] * 5
    live.send(_good(20, "G") + hostile)
    wait_until(
        lambda: (
            {DEAD_LETTERS, REJECT_RATIO}
            <= {n for n, s in live.prometheus.alert_states().items() if "firing" in s}
        ),
        60,
        "the dead-letter and reject-ratio alerts to fire",
    )
    assert live.stack.metric_sum("abacus_dead_letters_total") == len(hostile)
    firing = {a["labels"]["alertname"]: a for a in live.prometheus.api("alerts")["alerts"]}
    assert firing[DEAD_LETTERS]["labels"]["severity"] == "warning"
    assert firing[DEAD_LETTERS]["annotations"]["runbook_url"] == "README.md#abacusdeadletters"
    assert live.unexpected_alerts() == {}


def test_paused_consumption_makes_the_lag_alerts_pend_fire_and_resolve(live: Live) -> None:
    assert live.stack.worker is not None
    wait_consumed(live.stack, live.send(_good(10, "W")), timeout=60)
    wait_until(
        lambda: not ({LAG, STALLED} & set(live.prometheus.alert_states())), 30, "no lag alert"
    )
    children = _ingest_processes(live.stack.worker.pid)
    assert len(children) == 1, children  # ABACUS_INGEST_PROCESSES=1
    stop = threading.Event()
    ends: dict[int, int] = {}

    def produce() -> None:  # keep producing while consumption is paused
        i = 0
        while not stop.is_set():
            for p, end in live.send(_good(5, f"P{i}-")).items():
                ends[p] = max(ends.get(p, 0), end)
            i += 1
            stop.wait(0.5)

    producer = threading.Thread(target=produce, daemon=True)
    seen: dict[str, list[str]] = {LAG: [], STALLED: []}

    def record_states() -> bool:
        for alert in live.prometheus.api("alerts")["alerts"]:
            name, labels = alert["labels"]["alertname"], alert["labels"]
            ours = name in seen and labels.get("group") == live.ingest_group
            if ours and (not seen[name] or seen[name][-1] != alert["state"]):
                seen[name].append(alert["state"])
        return all(states and states[-1] == "firing" for states in seen.values())

    for pid in children:
        os.kill(pid, signal.SIGSTOP)
    try:
        producer.start()
        wait_until(record_states, 90, "the lag alerts to go pending, then firing", every=0.25)
        rules = live.prometheus.rules()
        assert rules[LAG]["state"] == "firing"
        assert rules[STALLED]["state"] == "firing"
        status = live.prometheus.query(
            f'group:abacus_consumer_group_status:code{{group="{live.ingest_group}"}}'
        )
        assert float(status[0]["value"][1]) == 3  # stalled: the worker is a live member
    finally:
        stop.set()
        producer.join(timeout=30)
        for pid in children:
            os.kill(pid, signal.SIGCONT)
    assert seen == {LAG: ["pending", "firing"], STALLED: ["pending", "firing"]}
    lag = next(
        a for a in live.prometheus.api("alerts")["alerts"] if a["labels"]["alertname"] == LAG
    )
    assert lag["labels"]["topic"] == live.stack.topic("events")
    assert lag["annotations"]["runbook_url"] == "README.md#abacusconsumerlaghigh"

    wait_consumed(live.stack, ends, timeout=90)  # nothing produced during the pause is lost
    wait_until(
        lambda: not ({LAG, STALLED} & set(live.prometheus.alert_states())),
        60,
        "the lag alerts to resolve after resume",
    )
    rules = live.prometheus.rules()
    assert rules[LAG]["state"] == "inactive"
    assert rules[STALLED]["state"] == "inactive"
    assert live.unexpected_alerts() == {}


def _value(sample: dict[str, Any]) -> float:
    return float(sample["value"][1])


def test_every_dashboard_and_rule_expression_evaluates(live: Live) -> None:
    live.send([*_good(10, "D"), (b"D999", b"\x00garbage")])
    wait_until(
        lambda: live.prometheus.query("sum(abacus_events_rejected_total) > 0"), 30, "a reject"
    )
    time.sleep(2)  # two more scrapes, so every rate() has samples on both sides
    empty = []
    for expr in deploy.dashboard_queries():
        if not live.prometheus.query(deploy.substitute(expr)):
            empty.append(expr)
    # Only the export panels may be empty: this test requests no export.
    assert all("export" in expr for expr in empty), empty
    for selector, label in deploy.variable_queries():
        values = {s["metric"].get(label) for s in live.prometheus.query(selector)}
        assert live.ingest_group in values, (selector, values)
    rules = live.prometheus.rules()
    assert {r.get("record") or r.get("alert") for r in deploy.rules()} == set(rules)
    for name, rule in rules.items():
        assert rule["health"] == "ok", (name, rule.get("lastError"))
        if rule["type"] == "recording":
            live.prometheus.query(rule["query"])  # evaluates without error
    memory = live.prometheus.query('abacus_child_processes_resident_memory_bytes{job="abacus"}')
    assert _value(memory[0]) > 10e6  # the ingest process, a Python interpreter
    assert _value(live.prometheus.query('process_resident_memory_bytes{job="abacus"}')[0]) > 50e6
