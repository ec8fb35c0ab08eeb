"""deploy/prometheus: promtool checks the rules and the config and runs the rule unit tests;
every rule is covered by tests.yaml and every alert carries what the on-call needs."""

from __future__ import annotations

import re
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

from streams.metrics import Metrics
from tests.marks import require_tool
from tests.support import deploy


@pytest.fixture(scope="module")
def promtool() -> str:
    return require_tool("promtool")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), capture_output=True, text=True, timeout=120, cwd=deploy.REPO, check=False
    )


def test_promtool_checks_the_rules(promtool: str) -> None:
    proc = run(promtool, "check", "rules", str(deploy.RULES))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(deploy.rules())} rules found" in proc.stdout


def test_promtool_unit_tests_pass(promtool: str) -> None:
    proc = run(promtool, "test", "rules", str(deploy.RULE_TESTS))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_promtool_unit_tests_can_fail(promtool: str, tmp_path: Path) -> None:
    """The harness is not vacuous: the same tests against a broken rule file fail."""
    broken = deploy.RULES.read_text().replace(
        "group_topic:abacus_consumer_lag_seconds:max > 300",
        "group_topic:abacus_consumer_lag_seconds:max > 900",
    )
    assert broken != deploy.RULES.read_text()
    (tmp_path / "alerts.yml").write_text(broken)
    (tmp_path / "tests.yaml").write_text(deploy.RULE_TESTS.read_text())
    proc = run(promtool, "test", "rules", str(tmp_path / "tests.yaml"))
    assert proc.returncode != 0
    assert "AbacusConsumerLagHigh" in proc.stdout + proc.stderr


def test_promtool_checks_the_compose_config(promtool: str) -> None:
    proc = run(promtool, "check", "config", str(deploy.PROMETHEUS_CONFIG))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    config = deploy.load_yaml(deploy.PROMETHEUS_CONFIG)
    assert config["rule_files"] == ["alerts.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["abacus"]["static_configs"][0]["targets"] == ["worker:6066"]


def test_every_rule_is_unit_tested_both_ways() -> None:
    """Each recording rule has an expected value; each alert fires in some test and is
    expected to stay quiet in some test (exp_alerts: [])."""
    tests = deploy.load_yaml(deploy.RULE_TESTS)["tests"]
    exprs = {case["expr"] for test in tests for case in test.get("promql_expr_test", [])}
    outcomes: dict[str, set[bool]] = defaultdict(set)
    for test in tests:
        for case in test.get("alert_rule_test", []):
            outcomes[case["alertname"]].add(bool(case.get("exp_alerts")))
    assert {r["record"] for r in deploy.recording_rules()} <= exprs
    assert {r["alert"]: {True, False} for r in deploy.alerting_rules()} == dict(outcomes)


def _readme_anchors() -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"^```.*?^```", "", (deploy.REPO / "README.md").read_text(), flags=re.S | re.M)
    headings = re.findall(r"^#+ (.+)$", text, re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_every_alert_has_for_severity_summary_and_a_runbook_in_the_readme() -> None:
    anchors = _readme_anchors()
    names = [rule["alert"] for rule in deploy.alerting_rules()]
    assert len(names) == len(set(names))
    for rule in deploy.alerting_rules():
        name = rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule.get("for", "")), name
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        notes = rule["annotations"]
        assert notes["summary"], name
        assert notes["description"], name
        page, _, anchor = notes["runbook_url"].partition("#")
        assert page == "README.md", name
        assert anchor == name.lower(), name
        assert anchor in anchors, f"README has no section #{anchor} for {name}"


def _exported_names() -> set[str]:
    """Sample names the worker's registry can export (labelled metrics included)."""
    names = {"up"}
    for family in Metrics().registry.collect():
        suffixes = {
            "counter": ["_total"],
            "histogram": ["_bucket", "_sum", "_count"],
        }.get(family.type, [""])
        names.update(family.name + s for s in suffixes)
    return names


def test_rules_read_only_metrics_the_worker_exports() -> None:
    exported = _exported_names() | {r["record"] for r in deploy.recording_rules()}
    for rule in deploy.rules():
        unknown = deploy.metric_names(rule["expr"]) - exported
        assert not unknown, f"{rule.get('alert') or rule.get('record')} reads {unknown}"
