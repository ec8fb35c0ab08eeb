"""Connection settings for every Kafka client the code creates, one function per library.

kafka-python (admin, lag, dead letters, export requests, the learning app's producer),
aiokafka (ingest, the roster consumer, compacted-topic reads and the roster importer's
publisher, benchmarks) and Faust (the worker's agents) all take
the broker address, TLS and SASL/SCRAM from `BrokerSettings` through here, so no client
can be left plaintext or unauthenticated by accident. One TLS context shape for all of
them: TLS 1.2+, the configured CA (else the system's), hostname checked unless disabled,
and the client certificate for mutual TLS when given.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Any

from abacus.errors import SettingsError
from abacus.settings import BrokerSettings

if TYPE_CHECKING:
    from faust.types.auth import CredentialsT

__all__ = ["aiokafka_config", "faust_credentials", "kafka_python_config", "ssl_context"]


def ssl_context(broker: BrokerSettings) -> ssl.SSLContext | None:
    """The TLS context of every client, or None without TLS; SettingsError when a
    configured file cannot be loaded."""
    if not broker.tls:
        return None
    try:
        context = ssl.create_default_context(
            cafile=str(broker.ssl_cafile) if broker.ssl_cafile else None
        )
        if broker.ssl_certfile is not None:
            context.load_cert_chain(str(broker.ssl_certfile), str(broker.ssl_keyfile))
    except (OSError, ssl.SSLError) as exc:
        raise SettingsError(f"cannot load the broker's TLS files: {exc}") from exc
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = broker.ssl_check_hostname
    return context


def _sasl(broker: BrokerSettings) -> dict[str, Any]:
    if not broker.sasl:
        return {}
    assert broker.sasl_password is not None  # BrokerSettings requires it with SASL
    return {
        "sasl_mechanism": broker.sasl_mechanism,
        "sasl_plain_username": broker.sasl_username,
        "sasl_plain_password": broker.sasl_password.get_secret_value(),
    }


def kafka_python_config(broker: BrokerSettings) -> dict[str, Any]:
    """Keyword arguments for kafka-python's KafkaProducer, KafkaConsumer and
    KafkaAdminClient: the servers, the protocol, TLS and SASL."""
    config: dict[str, Any] = {
        "bootstrap_servers": broker.servers,
        "security_protocol": broker.security_protocol,
        **_sasl(broker),
    }
    context = ssl_context(broker)
    if context is not None:
        config["ssl_context"] = context
    return config


def aiokafka_config(broker: BrokerSettings) -> dict[str, Any]:
    """Keyword arguments for aiokafka's AIOKafkaProducer and AIOKafkaConsumer (the same
    names as kafka-python's; aiokafka needs the TLS context object)."""
    return kafka_python_config(broker)


def faust_credentials(broker: BrokerSettings) -> CredentialsT | None:
    """``broker_credentials`` of the Faust app (None: plaintext, no authentication)."""
    # Imported here: Faust costs ~0.4 s to import and only the worker needs it.
    from faust.auth import SASLCredentials, SSLCredentials

    context = ssl_context(broker)
    if broker.sasl:
        assert broker.sasl_password is not None  # BrokerSettings requires it with SASL
        return SASLCredentials(
            username=broker.sasl_username,
            password=broker.sasl_password.get_secret_value(),
            mechanism=broker.sasl_mechanism,
            ssl_context=context,
        )
    if context is not None:
        return SSLCredentials(context)
    return None
