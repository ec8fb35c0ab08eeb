"""Settings the stack refuses to start with (pure rules, checked by `abacus up`/`worker`)."""

from __future__ import annotations

import ipaddress

from abacus.errors import SettingsError
from abacus.settings import DEFAULT_SIGNING_KEY, AbacusSettings

__all__ = ["check_startup", "is_loopback", "startup_refusal"]


def is_loopback(host: str) -> bool:
    """True when ``host`` is a loopback address (127.0.0.0/8, ::1) or ``localhost``.

    Other names are not resolved: a name could point anywhere, so it counts as public.
    """
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def startup_refusal(settings: AbacusSettings, *, embedded_broker: bool = False) -> str | None:
    """Why the worker (and, with ``embedded_broker``, the broker `abacus up` starts) must
    not start with these settings, or None.

    - The default signing key is public (it is in the source): anyone who can reach the
      web server could sign a download link. It is allowed on loopback only.
    - The embedded broker has no authentication: it listens on loopback only.
    """
    web = settings.web
    if web.signing_key.get_secret_value() == DEFAULT_SIGNING_KEY and not is_loopback(web.host):
        return (
            f"refusing to serve downloads on {web.host}:{web.port} with the default signing "
            "key: set ABACUS_WEB__SIGNING_KEY to a long random secret, or bind "
            "ABACUS_WEB__HOST to 127.0.0.1"
        )
    broker = settings.broker
    if embedded_broker and not is_loopback(broker.host):
        return (
            f"refusing to start the embedded broker on {broker.host}: it has no "
            "authentication and listens on loopback only (ABACUS_BROKER__HOST=127.0.0.1); "
            "use an external Kafka (ABACUS_BROKER__BOOTSTRAP) to serve other machines"
        )
    return None


def check_startup(settings: AbacusSettings, *, embedded_broker: bool = False) -> None:
    """Raise SettingsError with the reason when ``startup_refusal`` has one."""
    reason = startup_refusal(settings, embedded_broker=embedded_broker)
    if reason is not None:
        raise SettingsError(reason)
