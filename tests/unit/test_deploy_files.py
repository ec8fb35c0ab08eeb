"""The Docker files cannot run here (no Docker engine), so what can be checked is checked:
the compose files parse, every ABACUS_* variable they set is a real setting, the locked-down
Kafka's properties are consistent, and its ACLs let only trusted users write requests."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from abacus.kafka.topics import topic_specs
from abacus.settings import AbacusSettings

ROOT = Path(__file__).resolve().parents[2]
SECURE = ROOT / "deploy" / "kafka-acl"


def compose(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict)
    return doc


def merged() -> dict[str, dict[str, Any]]:
    """docker-compose.yml with the secure override applied (environment maps merge)."""
    services = compose(ROOT / "docker-compose.yml")["services"]
    for name, override in compose(SECURE / "docker-compose.secure.yml")["services"].items():
        service = services.setdefault(name, {})
        for key, value in override.items():
            if isinstance(value, dict) and isinstance(service.get(key), dict):
                service[key] = {**service[key], **value}
            else:
                service[key] = value
    return services


def setting_exists(variable: str) -> bool:
    """ABACUS_WEB__SIGNING_KEY → settings.web.signing_key exists."""
    path = variable.removeprefix("ABACUS_").lower().split("__")
    model: type[BaseModel] = AbacusSettings
    for i, part in enumerate(path):
        field = model.model_fields.get(part)
        if field is None:
            return False
        if i < len(path) - 1:
            model = field.annotation  # type: ignore[assignment]
            if not (isinstance(model, type) and issubclass(model, BaseModel)):
                return False
    return True


def dockerfile_env() -> set[str]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    names = set()
    for line in text.splitlines():
        if line.startswith("ENV "):
            names |= {item.split("=", 1)[0] for item in shlex.split(line[4:])}
    return names


def test_every_abacus_variable_the_worker_gets_is_a_setting() -> None:
    services = merged()
    names = set(services["worker"]["environment"]) | dockerfile_env()
    assert "ABACUS_WEB__SIGNING_KEY" in names
    assert "ABACUS_BROKER__SASL_PASSWORD" in names
    unknown = sorted(n for n in names if n.startswith("ABACUS_") and not setting_exists(n))
    assert unknown == []


def test_the_worker_image_binds_publicly_so_it_needs_a_real_key() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "ABACUS_WEB__HOST=0.0.0.0" in text
    key = compose(ROOT / "docker-compose.yml")["services"]["worker"]["environment"][
        "ABACUS_WEB__SIGNING_KEY"
    ]
    assert ":?" in key, "compose must refuse to start without a signing key"


def kafka_properties(environment: dict[str, str]) -> dict[str, str]:
    """The apache/kafka image's rule, reversed: KAFKA_ prefix; '___' is '-', '__' is '_',
    '_' is '.'."""
    out = {}
    for name, value in environment.items():
        if not name.startswith("KAFKA_"):
            continue
        key = name.removeprefix("KAFKA_").replace("___", "\0").replace("__", "\1")
        key = key.replace("_", ".").replace("\0", "-").replace("\1", "_").lower()
        out[key] = str(value)
    return out


def test_the_locked_down_broker_is_consistent() -> None:
    props = kafka_properties(merged()["kafka"]["environment"])
    listeners = {item.split("://")[0] for item in props["listeners"].split(",")}
    protocols = dict(item.split(":") for item in props["listener.security.protocol.map"].split(","))
    assert set(protocols) == listeners
    assert set(protocols.values()) <= {"SASL_PLAINTEXT", "SASL_SSL"}, "no unauthenticated listener"
    assert props["inter.broker.listener.name"] in listeners
    assert props["controller.listener.names"] in listeners
    assert props["authorizer.class.name"].endswith("StandardAuthorizer")
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["super.users"] == "User:admin"
    # Every listener enables mechanisms and has a login module for each of them.
    for listener in listeners:
        prefix = f"listener.name.{listener.lower()}."
        mechanisms = props[prefix + "sasl.enabled.mechanisms"].split(",")
        for mechanism in mechanisms:
            assert prefix + f"{mechanism.lower()}.sasl.jaas.config" in props
    jaas = [k for k in props if k.endswith(".sasl.jaas.config")]
    assert len(jaas) == len(listeners)
    clients = props["listener.name.clients.sasl.enabled.mechanisms"]
    assert clients == "SCRAM-SHA-512"  # what the worker's settings use
    known = {
        "node.id", "process.roles", "listeners", "advertised.listeners",
        "controller.listener.names", "listener.security.protocol.map",
        "controller.quorum.voters", "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor", "transaction.state.log.min.isr",
        "auto.create.topics.enable", "inter.broker.listener.name",
        "sasl.mechanism.inter.broker.protocol", "sasl.mechanism.controller.protocol",
        "authorizer.class.name", "super.users", "allow.everyone.if.no.acl.found",
    }  # fmt: skip
    per_listener = re.compile(
        r"listener\.name\.[a-z]+\.(sasl\.enabled\.mechanisms|[a-z0-9-]+\.sasl\.jaas\.config)"
    )
    assert sorted(k for k in props if k not in known and not per_listener.fullmatch(k)) == []
    worker = merged()["worker"]["environment"]
    assert worker["ABACUS_BROKER__SASL_MECHANISM"] == clients
    assert worker["ABACUS_BROKER__BOOTSTRAP"] == "kafka:9092"  # the CLIENTS listener


def acls() -> list[tuple[str, str, str]]:
    """(user, operation, topic) of every allow_topic line of setup.sh, arrays expanded."""
    text = (SECURE / "setup.sh").read_text()
    arrays = {
        name: body.split() for name, body in re.findall(r"^([A-Z_]+)=\(([^)]*)\)", text, re.M)
    }
    out = []
    for user, operation, rest in re.findall(r"^allow_topic (\S+) (\S+) (.*)$", text, re.M):
        for word in rest.split():
            expanded = re.fullmatch(r'"\$\{([A-Z_]+)\[@\]\}"', word)
            for topic in arrays[expanded.group(1)] if expanded else [word]:
                out.append((user, operation, topic))
    return out


def test_only_the_worker_and_operators_may_write_export_requests() -> None:
    rules = acls()
    writers = {user for user, op, topic in rules if op == "Write" and topic == "export-requests"}
    assert writers == {"abacus-worker", "abacus-ops"}
    assert {(op, topic) for user, op, topic in rules if user == "learning-app"} == {
        ("Write", "events")
    }
    topics = {spec.name for spec in topic_specs(AbacusSettings(home=Path("/x")))}
    assert {t for user, op, t in rules if user == "abacus-worker" and op == "Create"} == topics
    assert {t for _, _, t in rules} <= topics


def test_the_worker_reads_and_restores_every_roster_topic() -> None:
    """The roster consumer stores roster-*, district-config and roster-oneroster; after an
    embedded broker restart the worker publishes them again from ClickHouse."""
    t = AbacusSettings(home=Path("/x")).topics
    roster = {
        t.name(name)
        for name in (
            t.roster_users, t.roster_students, t.roster_links, t.district_config,
            t.roster_oneroster,
        )
    }  # fmt: skip
    rules = acls()
    for operation in ("Read", "Write"):
        allowed = {
            topic for user, op, topic in rules if user == "abacus-worker" and op == operation
        }
        assert roster <= allowed, operation


def test_the_setup_script_is_valid_bash() -> None:
    subprocess.run(["bash", "-n", str(SECURE / "setup.sh")], check=True)


@pytest.mark.parametrize(
    "path", [ROOT / "docker-compose.yml", SECURE / "docker-compose.secure.yml"]
)
def test_compose_files_parse(path: Path) -> None:
    assert "services" in compose(path)
