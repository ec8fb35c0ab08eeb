"""The ingest baseline: aiokafka getmany + Avro decode + one columnar insert per batch.

No validation, no facts, no dead letters: the floor any ingest path has to pay. Run as
its own process (`python -m abacus.bench.loader`), since chDB allows one engine per process.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid

from aiokafka import AIOKafkaConsumer, TopicPartition

from abacus.catalog import EVENTS
from abacus.events.codec import decode_record
from abacus.kafka_clients import aiokafka_config
from abacus.settings import AbacusSettings
from abacus.store.store import Store

__all__ = ["load"]


async def load(settings: AbacusSettings, topic: str, ends: dict[int, int]) -> dict[str, float]:
    store = Store.open(settings)
    store.migrate()
    consumer = AIOKafkaConsumer(
        **aiokafka_config(settings.broker),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=8 << 20,
        fetch_max_bytes=64 << 20,
    )
    await consumer.start()
    parts = [TopicPartition(topic, p) for p in ends]
    consumer.assign(parts)
    await consumer.seek_to_beginning(*parts)
    done: dict[int, int] = dict.fromkeys(ends, 0)
    events = 0
    started, cpu, kernel = time.perf_counter(), time.process_time(), os.times().system
    wall = time.time()  # the window, for the host's speed in it (abacus/bench/host_speed.py)
    while any(done[p] < end for p, end in ends.items()):
        batches = await consumer.getmany(timeout_ms=200, max_records=20_000)
        rows = []
        for tp, records in batches.items():
            for rec in records:
                if rec.offset >= ends[tp.partition]:
                    break  # records after the copy (none when the copy is all there is)
                for e in decode_record(rec.value):
                    rows.append(
                        (
                            e["district_id"],
                            e["student_id"],
                            uuid.UUID(e["event_id"]),
                            e["event_type"],
                            e["product"],
                            e["occurred_at"],
                            "{}",
                            tp.partition,
                            rec.offset,
                            "",  # broker epoch: the baseline leaves it at its default
                        )
                    )
                done[tp.partition] = rec.offset + 1
        if rows:
            store.insert_rows(EVENTS, rows)
            events += len(rows)
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu  # every thread of this process: chDB's too
    kernel = os.times().system - kernel  # of it, the kernel's
    await consumer.stop()
    store.close()
    return {
        "events": events,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "kernel_seconds": kernel,
        "window": [wall, wall + seconds],
    }


if __name__ == "__main__":
    args = json.loads(sys.argv[1])
    result = asyncio.run(
        load(AbacusSettings(), args["topic"], {int(k): v for k, v in args["ends"].items()})
    )
    print(json.dumps(result))
