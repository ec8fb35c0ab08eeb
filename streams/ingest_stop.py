"""How ingest stops: a drain on SIGTERM, a clear stop on unreadable records, a test fault."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from abacus.events.processing import SourceRecord
from abacus.lifecycle import EXIT_FINAL

__all__ = ["EXIT_UNREADABLE", "Drain", "codec_error_message", "maybe_inject_fault"]

log = logging.getLogger(__name__)

_END_CHECK_S = 5.0  # a broker that does not answer within this is gone (e.g. killed with us)

# The worker's exit status when it stops for good (EX_CONFIG): `abacus up` does not
# restart it, because a restart would fail again on the same records.
EXIT_UNREADABLE = EXIT_FINAL


def codec_error_message(exc: BaseException) -> str:
    """One line naming the codec and the fix, for records the consumer cannot decompress."""
    return (
        f"cannot read the events topic: {exc}. Install the codec libraries this release"
        " pins (`pip install -e .` installs cramjam, python-snappy, lz4 and zstandard),"
        " then start the worker again; nothing was committed past the unreadable records."
    )


def maybe_inject_fault(
    key: str | None, records: Sequence[SourceRecord], quarantined: Sequence[SourceRecord]
) -> None:
    """TEST ONLY, inert unless ``settings.test_crash_on_key`` is set: exit at once, as a
    segfault would, when a batch about to be stored holds a record with that key."""
    if key is None:
        return
    set_aside = {r.partition for r in quarantined}
    if any(r.key == key.encode() for r in records if r.partition not in set_aside):
        log.error("test fault: exiting at once on a record keyed %r", key)
        os._exit(70)


class Drain:
    """When a stopping worker has read enough: lag 0, or the drain timeout (logged)."""

    def __init__(self, timeout_s: float, what: str = "") -> None:
        self.timeout_s = timeout_s
        self.deadline: float | None = None
        self.done = False
        self.what = f"{what} " if what else ""  # which consumer, in the log lines

    async def check(self, consumer: AIOKafkaConsumer, *, idle: bool) -> None:
        now = time.monotonic()
        if self.deadline is None:
            self.deadline = now + self.timeout_s
            log.info(
                "%sdraining: reading until the lag is 0 (at most %.0fs)", self.what, self.timeout_s
            )
        if idle and await _caught_up_or_unknown(consumer):
            log.info("%sdrained: lag 0", self.what)
            self.done = True
        elif now >= self.deadline:
            log.warning(
                "%sdrain stopped after %.0fs with records still unread; the next start reads"
                " them (embedded broker: they are lost when it stops)",
                self.what,
                self.timeout_s,
            )
            self.done = True


async def _caught_up_or_unknown(consumer: AIOKafkaConsumer) -> bool:
    try:
        return await asyncio.wait_for(_caught_up(consumer), timeout=_END_CHECK_S)
    except (KafkaError, TimeoutError) as exc:  # the broker is going away: what was read is stored
        log.warning("drain: log ends unknown (%r); stopping with what was read", exc)
        return True


async def _caught_up(consumer: AIOKafkaConsumer) -> bool:
    """Nothing came back from the last fetch and every position is at the log end."""
    partitions = list(consumer.assignment())
    if not partitions:
        return True
    ends = await consumer.end_offsets(partitions)
    for tp in partitions:
        if await consumer.position(tp) < ends[tp]:
            return False
    return True
