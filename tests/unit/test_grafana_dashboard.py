"""deploy/grafana and docker-compose.yml: the dashboard's shape and queries, and the
Prometheus + Grafana services provisioned from the files in the repository."""

from __future__ import annotations

from itertools import combinations
from typing import Any

from streams.metrics import Metrics
from tests.support import deploy

# The panels the operations issue asks for, by title.
REQUIRED_PANELS = {
    "Lag per partition (records)",
    "Lag per partition (seconds)",
    "Group status",
    "Ingest rate (events/s)",
    "Rejects by reason (events/s)",
    "Dead letters",
    "Freshness p50 / p99",
    "ClickHouse insert latency p50 / p99",
    "Exports by outcome",
    "Export duration",
    "Memory (resident)",
}


def test_the_dashboard_is_a_current_classic_model_with_a_datasource_variable() -> None:
    doc = deploy.dashboard()
    assert doc["schemaVersion"] == 42  # the last classic-model version (Grafana 12)
    assert doc["uid"] == "abacus-overview"
    assert doc["id"] is None  # so that import and provisioning never collide
    variables = {v["name"]: v for v in doc["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in deploy.panels():
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"]
            assert target["refId"]


def test_it_has_every_panel_the_issue_lists_in_a_grid_without_overlaps() -> None:
    panels = deploy.panels()
    assert {p["title"] for p in panels} >= REQUIRED_PANELS
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))

    def cells(panel: dict[str, Any]) -> set[tuple[int, int]]:
        g = panel["gridPos"]
        assert g["x"] >= 0, panel["title"]
        assert g["x"] + g["w"] <= 24, panel["title"]
        return {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }

    for a, b in combinations(panels, 2):
        assert not cells(a) & cells(b), f"{a['title']!r} overlaps {b['title']!r}"


def test_status_values_are_mapped_to_the_lag_monitor_statuses() -> None:
    panel = next(p for p in deploy.panels() if p["title"] == "Group status")
    options = panel["fieldConfig"]["defaults"]["mappings"][0]["options"]
    assert {k: v["text"] for k, v in options.items()} == {
        "0": "ok",
        "1": "lagging",
        "2": "rewind",
        "3": "stalled",
        "4": "stopped",
    }
    assert panel["targets"][0]["expr"].startswith("group:abacus_consumer_group_status:code")


def test_queries_read_only_metrics_the_worker_exports_or_the_rules_record() -> None:
    known = {"up"} | {r["record"] for r in deploy.recording_rules()}
    for family in Metrics().registry.collect():
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}
        known.update(family.name + s for s in suffixes.get(family.type, [""]))
    queries = deploy.dashboard_queries() + [m for m, _ in deploy.variable_queries()]
    assert len(queries) > 20
    for query in queries:
        expr = deploy.substitute(query)
        names = deploy.metric_names(expr)
        assert names, expr
        assert names <= known, f"{expr} reads unknown {names - known}"


def test_compose_provisions_prometheus_and_grafana_from_the_repository() -> None:
    compose = deploy.load_yaml(deploy.REPO / "docker-compose.yml")
    services = compose["services"]
    assert {"kafka", "clickhouse", "worker", "prometheus", "grafana"} <= set(services)
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (deploy.REPO / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in compose["volumes"], f"{name} uses undeclared volume {source}"
    prometheus = services["prometheus"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    assert "./deploy/prometheus:/etc/prometheus:ro" in prometheus["volumes"]
    grafana = services["grafana"]
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in grafana["volumes"]
    provisioning = deploy.DEPLOY / "grafana" / "provisioning"
    source = deploy.load_yaml(provisioning / "datasources" / "prometheus.yml")["datasources"][0]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    assert source["isDefault"] is True
    provider = deploy.load_yaml(provisioning / "dashboards" / "abacus.yml")["providers"][0]
    mounted = next(v for v in grafana["volumes"] if v.startswith("./deploy/grafana/abacus.json"))
    assert mounted.split(":")[1].startswith(provider["options"]["path"] + "/")
