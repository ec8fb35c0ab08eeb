"""Keep trying a write until the store takes it: what an agent has read is never acked
unstored.

Faust acks a record once the agent moves past it, even when the agent raised; so an agent
whose store write fails must not move on. `StoreRetry.run` tries the write again after a
capped exponential backoff, for as long as it takes — a retriable error (the store busy or
unreachable) and a non-retriable one alike: the second needs a person (a full disk, a
dropped table, a bug of ours), and until then the records wait, unacked, rather than go
missing. Each failure is logged (loudly, ERROR, when retrying cannot help by itself),
counted in a Prometheus counter, and `/readyz` answers 503 until a write lands again.
A stopping worker waits for the write (Faust waits for unacked records), and `abacus up`
kills it after its grace period: then nothing was acked, and the next start reads the
records again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from prometheus_client import Counter

from abacus.errors import StorageError

__all__ = ["StoreRetry"]

log = logging.getLogger(__name__)


class StoreRetry:
    """Runs one kind of write until it succeeds; ``failing(True|False)`` reports the state."""

    def __init__(
        self,
        what: str,
        failures: Counter,
        failing: Callable[[bool], None],
        *,
        first_delay_s: float = 0.5,
        max_delay_s: float = 30.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.what = what
        self.failures = failures
        self.failing = failing
        self.first_delay_s = first_delay_s
        self.max_delay_s = max_delay_s
        self._sleep = sleep

    async def run(self, write: Callable[[], Awaitable[None]]) -> int:
        """Await ``write()`` until it returns; returns how many tries failed first."""
        delay, failed = self.first_delay_s, 0
        while True:
            try:
                await write()
            except Exception as exc:  # noqa: BLE001 - whatever failed, the records wait
                failed += 1
                self._failed(exc, failed, delay)
                await self._sleep(delay)
                delay = min(self.max_delay_s, delay * 2)
                continue
            if failed:
                log.warning("%s stored after %d failed attempt(s)", self.what, failed)
                self.failing(False)
            return failed

    def _failed(self, exc: Exception, failed: int, delay: float) -> None:
        # No message text: a driver's message may quote the values it could not store.
        retriable = isinstance(exc, StorageError) and exc.retriable
        self.failures.labels("true" if retriable else "false").inc()
        self.failing(True)
        if isinstance(exc, StorageError):
            error = " ".join(str(p) for p in ("StorageError", exc.code, exc.name) if p)
        else:
            error = f"{type(exc).__name__} (a bug?)"
        if retriable:
            log.warning(
                "%s not stored (%s), attempt %d; trying again in %gs",
                self.what, error, failed, delay,
            )  # fmt: skip
        else:
            log.error(
                "%s NOT STORED (%s, not retriable), attempt %d: the records wait unacked and"
                " are tried again in %gs until the store takes them; fix the store",
                self.what, error, failed, delay,
            )  # fmt: skip
