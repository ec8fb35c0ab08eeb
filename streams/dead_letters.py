"""Dead letters out of the worker: kept in ClickHouse, then sent to the dead-letter topic.

ClickHouse is the durable record (the embedded broker forgets its topics when it stops):
every dead letter is inserted into ``dead_letters`` before it is produced, and both happen
before the batch's offsets are committed. A dead letter too large for the topic becomes a
pointer (`abacus.events.dead_letter`), also when the broker itself refuses the size.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError

from abacus.catalog import DEAD_LETTERS
from abacus.events.dead_letter import OutgoingDeadLetter, dead_letter_record, pointer_to
from abacus.events.processing import SourceRecord
from abacus.store.store import Store

__all__ = ["DeadLetterWriter", "producer_max_request_bytes"]

log = logging.getLogger(__name__)


def producer_max_request_bytes(max_dead_letter: int) -> int:
    """Room for the largest dead letter we send whole (aiokafka's default is 1 MiB)."""
    return max(1 << 20, max_dead_letter + (64 << 10))


class DeadLetterWriter:
    """Store, then deliver, the dead letters of one batch; returns how many were pointers."""

    def __init__(
        self,
        producer: AIOKafkaProducer,
        store: Store,
        topic: str,
        *,
        max_bytes: int,
    ) -> None:
        self.producer = producer
        self.store = store
        self.topic = topic
        self.max_bytes = max_bytes

    async def deliver(self, items: Sequence[tuple[SourceRecord, str]], epoch: str) -> int:
        if not items:
            return 0
        now = datetime.now(UTC)
        rows: list[list[Any]] = [  # in the catalog's column order of DEAD_LETTERS
            [epoch, s.topic, s.partition, s.offset, s.key or b"", s.value or b"", reason, now]
            for s, reason in items
        ]
        await self.store.ainsert_rows(DEAD_LETTERS, rows)
        letters = [
            dead_letter_record(
                key=s.key,
                value=s.value,
                reason=reason,
                topic=s.topic,
                partition=s.partition,
                offset=s.offset,
                epoch=epoch,
                failed_at=now.isoformat(),
                max_bytes=self.max_bytes,
            )
            for s, reason in items
        ]
        return await self.send(letters)

    async def send(self, letters: Sequence[OutgoingDeadLetter]) -> int:
        """Produce every letter and wait for the acks; a letter the client or the broker
        finds too large goes again as its pointer. Returns the number of pointers."""
        pointers = sum(1 for letter in letters if letter.is_pointer)
        pending = [(letter, await self._send(letter)) for letter in letters]
        retry: list[OutgoingDeadLetter] = []
        for letter, sent in pending:
            if sent is None:
                retry.append(letter)
                continue
            try:
                await sent
            except MessageSizeTooLargeError:
                retry.append(letter)
        for letter in retry:
            log.warning(
                "a dead letter of %d bytes was refused as too large; sent a pointer", letter.size
            )
            sent = await self._send(pointer_to(letter))
            if sent is None:  # cannot happen: a pointer is a few hundred bytes
                raise MessageSizeTooLargeError("dead-letter pointer refused")
            await sent
        return pointers + len(retry)

    async def _send(self, letter: OutgoingDeadLetter) -> asyncio.Future[Any] | None:
        try:
            return await self.producer.send(
                self.topic, key=letter.key, value=letter.value, headers=letter.headers
            )
        except MessageSizeTooLargeError:
            return None
