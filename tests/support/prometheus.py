"""A real Prometheus server for tests: own config, own TSDB directory, a free loopback port."""

from __future__ import annotations

import json
import subprocess
import urllib.parse
from pathlib import Path
from typing import Any

import yaml

from abacus.embedded.broker import free_port
from tests.support.stack import http_get, wait_until


class PrometheusServer:
    """`prometheus` scraping ``targets`` (job ``abacus``) every second and evaluating
    ``rule_file`` every second; stopped by ``close``."""

    def __init__(self, binary: str, workdir: Path, targets: list[str], rule_file: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "global": {
                "scrape_interval": "1s",
                "scrape_timeout": "1s",
                "evaluation_interval": "1s",
            },
            "rule_files": [str(rule_file)],
            "scrape_configs": [{"job_name": "abacus", "static_configs": [{"targets": targets}]}],
        }
        config_path = workdir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config))
        self.log_path = workdir / "prometheus.log"
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={config_path}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_until(self._ready, 30, "prometheus /-/ready")

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"prometheus exited {self.process.returncode}:\n{self.log()}")
        return http_get(f"{self.url}/-/ready")[0] == 200

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def api(self, path: str, **params: str) -> Any:
        """``data`` of a Prometheus HTTP API answer; fails the test on an error answer."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        status, body = http_get(f"{self.url}/api/v1/{path}{query}", timeout=5)
        assert status == 200, f"/api/v1/{path} {params}: {status} {body[:500]!r}"
        doc = json.loads(body)
        assert doc["status"] == "success", doc
        assert not doc.get("warnings"), doc
        return doc["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        assert data["resultType"] in ("vector", "scalar", "matrix"), data
        result: list[dict[str, Any]] = data["result"]
        return result

    def alert_states(self) -> dict[str, set[str]]:
        """alertname -> states (pending / firing) of its active alerts, from /api/v1/alerts."""
        states: dict[str, set[str]] = {}
        for alert in self.api("alerts")["alerts"]:
            states.setdefault(alert["labels"]["alertname"], set()).add(alert["state"])
        return states

    def rules(self) -> dict[str, dict[str, Any]]:
        """Every loaded rule by alert or record name, from /api/v1/rules."""
        return {rule["name"]: rule for g in self.api("rules")["groups"] for rule in g["rules"]}

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
