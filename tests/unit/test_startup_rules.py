"""Settings the stack refuses to start with: the default signing key off loopback, and the
embedded broker on anything but loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from abacus.embedded.broker import EmbeddedBroker
from abacus.errors import SettingsError, StackError
from abacus.security import check_startup, is_loopback, startup_refusal
from abacus.settings import DEFAULT_SIGNING_KEY, AbacusSettings


def settings(**web: object) -> AbacusSettings:
    return AbacusSettings(home=Path("/nonexistent"), web=web)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("192.0.2.2", False),
        ("10.0.0.1", False),
        ("worker.internal", False),  # names are not resolved: they count as public
        ("localhost.example.com", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_the_default_key_is_fine_on_loopback() -> None:
    assert startup_refusal(settings()) is None
    assert startup_refusal(settings(host="::1")) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.2", "abacus.example.org"])
def test_the_default_key_is_refused_on_any_other_address(host: str) -> None:
    reason = startup_refusal(settings(host=host))
    assert reason is not None
    assert host in reason
    assert "ABACUS_WEB__SIGNING_KEY" in reason
    assert "\n" not in reason
    with pytest.raises(SettingsError, match="default signing key"):
        check_startup(settings(host=host))


def test_a_real_key_may_be_served_anywhere() -> None:
    assert startup_refusal(settings(host="0.0.0.0", signing_key="s" * 40)) is None
    assert settings().web.signing_key.get_secret_value() == DEFAULT_SIGNING_KEY


def test_the_embedded_broker_is_refused_off_loopback() -> None:
    exposed = AbacusSettings(home=Path("/nonexistent"), broker={"host": "0.0.0.0"})
    assert startup_refusal(exposed) is None  # the worker alone starts no broker
    reason = startup_refusal(exposed, embedded_broker=True)
    assert reason is not None
    assert "loopback only" in reason
    with pytest.raises(StackError, match="loopback only"):
        EmbeddedBroker(host="0.0.0.0").start()


def test_the_embedded_broker_listens_on_and_advertises_its_loopback_address_only() -> None:
    args = EmbeddedBroker(host="127.0.0.1", port=19092).arguments()
    assert args[args.index("--listener-url") + 1] == "tcp://127.0.0.1:19092"
    assert args[args.index("--advertised-listener-url") + 1] == "tcp://127.0.0.1:19092"
