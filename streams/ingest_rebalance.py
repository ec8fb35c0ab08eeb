"""What the ingest service does when the group takes partitions away (another worker joins
or leaves): finish the batches in flight, or abandon them; never commit for a partition
it no longer holds.

aiokafka rebalances eagerly: every member gives up every partition, then gets its share
back. Before the group re-forms, `on_partitions_revoked` runs (and may take its time;
the member keeps heartbeating). The service then stops handing batches over, waits a
bounded time for the batches in flight to be stored and committed, and abandons the rest:
they are not committed and the next owner reads them again (every stored row is keyed
by event_id, so whoever stores them twice changes nothing). Records fetched but not yet
handed over are dropped the same way. An abandoned batch did not crash anything, so its
attempt does not count towards quarantining it (`streams/attempts.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from typing import Protocol

from aiokafka import ConsumerRebalanceListener, TopicPartition

__all__ = ["Assignments", "IngestRebalance"]

log = logging.getLogger(__name__)


class Assignments(Protocol):
    """The ingest service, as the listener sees it (``batch_done`` is set each time a
    batch is finished with)."""

    batch_done: asyncio.Event

    def in_flight(self, partitions: Iterable[int]) -> set[int]: ...

    def hold(self, holding: bool) -> None: ...

    def abandon(self, partitions: Iterable[int]) -> int: ...


class IngestRebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """The ingest consumer's rebalance listener; waits at most ``wait_s`` on a revoke."""

    def __init__(self, service: Assignments, wait_s: float) -> None:
        self.service = service
        self.wait_s = wait_s

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        partitions = {tp.partition for tp in revoked}
        if not partitions:
            return
        service = self.service
        service.hold(True)  # nothing more is handed over until the group has re-formed
        try:
            started = time.monotonic()
            deadline = started + self.wait_s
            while (left := deadline - time.monotonic()) > 0:
                service.batch_done.clear()
                if not service.in_flight(partitions):
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(service.batch_done.wait(), left)
            unfinished = service.in_flight(partitions)
            abandoned = service.abandon(partitions)
        finally:
            service.hold(False)
        if unfinished:
            log.warning(
                "partitions %s revoked; %d batch(es) still being stored after %.1fs were"
                " abandoned uncommitted (the next owner reads them again)",
                sorted(unfinished), abandoned, self.wait_s,
            )  # fmt: skip
        else:
            log.info(
                "partitions %s revoked after %.2fs; every batch in flight was committed",
                sorted(partitions), time.monotonic() - started,
            )  # fmt: skip

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        log.info("partitions %s assigned", sorted(tp.partition for tp in assigned))
