"""The files under deploy/ as data: rules, dashboard expressions, metric names in PromQL."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
RULES = DEPLOY / "prometheus" / "alerts.yml"
RULE_TESTS = DEPLOY / "prometheus" / "tests.yaml"
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
DASHBOARD = DEPLOY / "grafana" / "abacus.json"

# What Grafana substitutes before a query reaches Prometheus, for evaluating them by hand.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$group": ".*"}

_NAME = re.compile(r"\b(?:abacus_[a-z0-9_]+|process_[a-z0-9_]+|up|[a-z_]+:[a-z0-9_:]+)\b")
_LABEL_VALUES = re.compile(r"^label_values\((?P<metric>[^,]+),\s*(?P<label>\w+)\)$")


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def rules() -> list[dict[str, Any]]:
    """Every rule of alerts.yml, recording and alerting, in file order."""
    return [rule for group in load_yaml(RULES)["groups"] for rule in group["rules"]]


def alerting_rules() -> list[dict[str, Any]]:
    return [rule for rule in rules() if "alert" in rule]


def recording_rules() -> list[dict[str, Any]]:
    return [rule for rule in rules() if "record" in rule]


def dashboard() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return doc


def panels() -> list[dict[str, Any]]:
    """Every panel, rows' nested panels included."""
    out = []
    for panel in dashboard()["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def dashboard_queries() -> list[str]:
    """Every PromQL expression in the dashboard (panel targets), as written."""
    return [t["expr"] for p in panels() for t in p.get("targets", []) if t.get("expr")]


def variable_queries() -> list[tuple[str, str]]:
    """(metric selector, label) of each `label_values(metric, label)` template variable."""
    out = []
    for var in dashboard()["templating"]["list"]:
        if var.get("type") != "query":
            continue
        query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        match = _LABEL_VALUES.match(query.strip())
        assert match, f"unsupported variable query {query!r}"
        out.append((match["metric"].strip(), match["label"]))
    return out


def substitute(expr: str) -> str:
    """The expression as Grafana would send it (variables replaced)."""
    for name, value in sorted(GRAFANA_VARIABLES.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace(name, value)
    assert "$" not in expr, f"unknown Grafana variable in {expr!r}"
    return expr


def metric_names(expr: str) -> set[str]:
    """Metric (and recording-rule) names an expression reads; label names are excluded."""
    without_labels = re.sub(r"\{[^}]*\}", "", expr)
    without_strings = re.sub(r'"[^"]*"', "", without_labels)
    without_by = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", "", without_strings)
    return set(_NAME.findall(without_by))
