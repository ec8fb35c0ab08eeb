"""Every Kafka client takes TLS and SASL/SCRAM from the broker settings: the settings'
rules, the arguments per library (kafka-python, aiokafka, Faust), and no client in the code
built around the helper."""

from __future__ import annotations

import re
import ssl
from pathlib import Path

import certifi
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from faust.auth import SASLCredentials, SSLCredentials
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from pydantic import ValidationError

from abacus.errors import SettingsError
from abacus.kafka_clients import (
    aiokafka_config,
    faust_credentials,
    kafka_python_config,
    ssl_context,
)
from abacus.settings import AbacusSettings, BrokerSettings

ROOT = Path(__file__).resolve().parents[2]


def broker(**fields: object) -> BrokerSettings:
    return BrokerSettings(bootstrap="kafka-1:9093,kafka-2:9093", **fields)


SCRAM_TLS = {
    "security_protocol": "SASL_SSL",
    "sasl_mechanism": "SCRAM-SHA-512",
    "sasl_username": "abacus-worker",
    "sasl_password": "s3cret",
    "ssl_cafile": certifi.where(),
}


def test_plaintext_is_the_default_and_adds_nothing() -> None:
    embedded = BrokerSettings()
    assert kafka_python_config(embedded) == {
        "bootstrap_servers": "127.0.0.1:9092",
        "security_protocol": "PLAINTEXT",
    }
    assert aiokafka_config(embedded) == kafka_python_config(embedded)
    assert faust_credentials(embedded) is None
    assert ssl_context(embedded) is None


def test_sasl_ssl_with_scram_for_kafka_python() -> None:
    config = kafka_python_config(broker(**SCRAM_TLS))
    context = config.pop("ssl_context")
    assert config == {
        "bootstrap_servers": "kafka-1:9093,kafka-2:9093",
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "abacus-worker",
        "sasl_plain_password": "s3cret",
    }
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.get_ca_certs(), "the configured CA bundle is loaded"


@pytest.mark.parametrize("client", [KafkaProducer, KafkaConsumer, KafkaAdminClient])
def test_kafka_python_clients_know_every_key(client: type) -> None:
    # kafka-python raises on unknown keys; these must all be its own.
    assert set(kafka_python_config(broker(**SCRAM_TLS))) <= set(client.DEFAULT_CONFIG)


async def test_aiokafka_clients_accept_the_same_settings() -> None:
    settings = broker(**SCRAM_TLS)
    producer = AIOKafkaProducer(**aiokafka_config(settings))
    consumer = AIOKafkaConsumer("events", **aiokafka_config(settings))
    for client in (producer.client, consumer._client):
        assert client._security_protocol == "SASL_SSL"
        assert client._sasl_mechanism == "SCRAM-SHA-512"
        assert client._sasl_plain_username == "abacus-worker"
        assert client._sasl_plain_password == "s3cret"
        assert isinstance(client._ssl_context, ssl.SSLContext)
    await producer.stop()
    await consumer.stop()


@pytest.mark.parametrize(
    "fields",
    [
        SCRAM_TLS,
        {**SCRAM_TLS, "security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-256"},
        {"security_protocol": "SSL", "ssl_cafile": certifi.where()},
    ],
    ids=["sasl_ssl", "sasl_plaintext", "ssl"],
)
def test_faust_gets_the_same_protocol_and_credentials_as_aiokafka(
    fields: dict[str, object],
) -> None:
    settings = broker(**fields)
    credentials = faust_credentials(settings)
    assert isinstance(credentials, SASLCredentials if settings.sasl else SSLCredentials)
    faust_view = dict(credentials_to_aiokafka_auth(credentials))
    ours = aiokafka_config(settings)
    ours.pop("bootstrap_servers")
    assert faust_view.pop("security_protocol") == ours.pop("security_protocol")
    assert (faust_view.pop("ssl_context") is None) == (ours.pop("ssl_context", None) is None)
    assert faust_view == ours


def test_sasl_without_tls_has_no_context_and_tls_without_sasl_has_no_credentials() -> None:
    plain = kafka_python_config(broker(**{**SCRAM_TLS, "security_protocol": "SASL_PLAINTEXT"}))
    assert "ssl_context" not in plain
    assert plain["sasl_mechanism"] == "SCRAM-SHA-512"
    tls = kafka_python_config(broker(security_protocol="SSL", ssl_check_hostname=False))
    assert not any(key.startswith("sasl_") for key in tls)
    assert tls["ssl_context"].check_hostname is False


def test_the_password_is_a_secret_in_the_settings() -> None:
    settings = broker(**SCRAM_TLS)
    assert "s3cret" not in repr(settings)
    assert "s3cret" not in str(AbacusSettings(home=Path("/x"), broker=settings))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"security_protocol": "SASL_SSL"}, "needs sasl_username and sasl_password"),
        ({"security_protocol": "SASL_SSL", "sasl_username": "u"}, "needs sasl_username"),
        ({**SCRAM_TLS, "sasl_mechanism": "PLAIN"}, "sasl_mechanism"),
        ({"security_protocol": "TLS"}, "security_protocol"),
        ({"security_protocol": "SSL", "ssl_certfile": "c.pem"}, "go together"),
    ],
)
def test_incomplete_security_settings_are_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        broker(**fields)


def test_the_embedded_broker_takes_no_security_settings() -> None:
    with pytest.raises(ValidationError, match="needs an external Kafka"):
        BrokerSettings(security_protocol="SSL")


def test_a_missing_ca_file_is_a_settings_error(tmp_path: Path) -> None:
    settings = broker(security_protocol="SSL", ssl_cafile=tmp_path / "missing.pem")
    with pytest.raises(SettingsError, match="cannot load the broker's TLS files"):
        kafka_python_config(settings)


def test_no_kafka_client_in_the_code_is_built_around_the_helper() -> None:
    """Every client gets its connection from abacus/kafka_clients.py: nothing else names
    the servers to a client directly."""
    offenders = []
    for package in ("abacus", "streams", "consumers", "benchmarks"):
        for path in (ROOT / package).rglob("*.py"):
            if path.name == "kafka_clients.py":
                continue
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if re.search(r"bootstrap_servers\s*=|security_protocol\s*=", line):
                    offenders.append(f"{path.relative_to(ROOT)}:{n}")
    assert offenders == []
