"""The ingest benchmarks' data: simulated events, their Kafka records, topics pre-loaded
with them, and the district's config stored in a worker's home before it starts."""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import shutil
import time
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path

from aiokafka import AIOKafkaProducer

from abacus.catalog import DISTRICTS
from abacus.district import DistrictConfig
from abacus.domain.grades import GRADES
from abacus.events.codec import Event, encode_batch, encode_event
from abacus.kafka_clients import aiokafka_config
from abacus.roster.records import config_value, decode_value, district_row
from abacus.settings import AbacusSettings, ClickHouseSettings
from abacus.simulator import SimStudent, SimulationConfig, simulate
from abacus.store.store import Store

__all__ = [
    "DISTRICT",
    "TZ",
    "RecordSource",
    "configured_homes",
    "encode_records",
    "make_events",
    "paced",
    "produce",
    "produce_copies",
    "school_years",
    "take",
]

DISTRICT = "bench-district"
TZ = "America/Chicago"
_GRADES = GRADES[:10]  # PK-8

Record = tuple[bytes, bytes]


def school_years(first_seed: int = 0) -> Iterator[list[Event]]:
    """A school year of 200 students per seed (~860k events), seed after seed."""
    for seed in itertools.count(first_seed):
        students = [SimStudent(f"B{seed}-{i:04d}", _GRADES[i % len(_GRADES)]) for i in range(200)]
        yield simulate(
            students, SimulationConfig(DISTRICT, TZ, date(2025, 8, 18), date(2026, 6, 5), seed=seed)
        )


def take(
    years: Iterator[list[Event]], n: int, spare: Sequence[Event] = ()
) -> tuple[list[Event], list[Event]]:
    """The first ``n`` events of ``spare`` then ``years``, and the rest of the last year
    simulated (the spare of the next `take`: a seed is not simulated twice)."""
    out = list(spare)
    while len(out) < n:
        out.extend(next(years))
    return out[:n], out[n:]


def make_events(n: int, first_seed: int = 0) -> list[Event]:
    """At least ``n`` realistic events (a school year's worth per 200 students), cut to n."""
    return take(school_years(first_seed), n)[0]


def _encoded(events: Sequence[Event], batch: bool) -> Iterator[Record]:
    if not batch:
        for e in events:
            yield e["student_id"].encode(), encode_event(e)
        return
    by_student: dict[str, list[Event]] = {}
    for e in events:
        by_student.setdefault(e["student_id"], []).append(e)
    for sid, items in by_student.items():
        for i in range(0, len(items), 50):
            yield sid.encode(), encode_batch(items[i : i + 50])


def encode_records(events: Sequence[Event], batch: bool) -> list[Record]:
    """(key, value) records: one per event, or per-student SDK batches of up to 50."""
    return list(_encoded(events, batch))


class RecordSource:
    """`encode_records` of ``events``, encoded only as far as asked and only once (Avro encoding
    is ~65 µs an event: a freshness phase sends a few seconds' worth, not all of them)."""

    def __init__(self, events: Sequence[Event], batch: bool) -> None:
        self._source = _encoded(events, batch)
        self._done: list[Record] = []

    def first(self, n: int) -> list[Record]:
        """The first ``n`` records (fewer when the events run out)."""
        self._done.extend(itertools.islice(self._source, max(0, n - len(self._done))))
        return self._done[:n]


async def paced(settings: AbacusSettings, recs: list[Record], per_second: float) -> dict[int, int]:
    """Send records at a steady rate (10 ms ticks); return the ends reached."""
    producer = AIOKafkaProducer(**aiokafka_config(settings.broker), linger_ms=5)
    await producer.start()
    topic = settings.topics.name(settings.topics.events)
    futures = []
    started = time.perf_counter()
    for i, (key, value) in enumerate(recs):
        due = started + i / per_second
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        futures.append(await producer.send(topic, key=key, value=value))
    ends: dict[int, int] = {}
    for meta in await asyncio.gather(*futures):
        ends[meta.partition] = max(ends.get(meta.partition, 0), meta.offset + 1)
    await producer.stop()
    return ends


def _config_value() -> bytes:
    """The bench district's config record."""
    config = DistrictConfig(
        district_id=DISTRICT, name="Bench", timezone=TZ, school_year_start="08-15"
    )
    return config_value(config, "bench", int(time.time() * 1000))


async def produce_copies(
    targets: Sequence[AbacusSettings], recs: Sequence[Record]
) -> list[dict[int, int]]:
    """The district's config record, then ``recs``, onto each target's topics (its prefix);
    the ends reached on each target's events topic, in the same order."""
    producer = AIOKafkaProducer(
        **aiokafka_config(targets[0].broker), linger_ms=20, max_batch_size=1 << 20, acks="all"
    )
    await producer.start()
    out = []
    for target in targets:
        topics = target.topics
        await producer.send_and_wait(
            topics.name(topics.district_config), key=DISTRICT.encode(), value=_config_value()
        )
        topic = topics.name(topics.events)
        futures = [await producer.send(topic, key=k, value=v) for k, v in recs]
        ends: dict[int, int] = {}
        for meta in await asyncio.gather(*futures):
            ends[meta.partition] = max(ends.get(meta.partition, 0), meta.offset + 1)
        out.append(ends)
    await producer.stop()
    return out


async def produce(settings: AbacusSettings, events: list[Event], batch: bool) -> dict[int, int]:
    """The district's config record, then ``events``' records, onto ``settings``' topics."""
    return (await produce_copies([settings], encode_records(events, batch)))[0]


def configured_homes(homes: Sequence[Path]) -> None:
    """The district's config stored in each worker's home before it starts, as the roster
    consumer stores it (the same record is on the config topic too). A district is
    configured before its students' events arrive: without this the first events of the
    run were stored pending and their facts derived again once the roster consumer had
    stored the config (4 of 5.7 s of a 100k-event run, measured). chDB allows one data
    path per process, so it is stored by a process of its own, which has exited before the
    first home is copied to the others (relative links, no path inside: a copy of a closed
    chDB directory opens as the original; ~2.4 s a process saved per home)."""
    first, *others = homes
    proc = multiprocessing.get_context("spawn").Process(target=_store_config_in, args=(first,))
    proc.start()
    proc.join(timeout=300)
    if proc.exitcode is None:  # stuck: it must not hold the path the worker opens next
        proc.kill()
        proc.join()
    if proc.exitcode != 0:
        raise RuntimeError(f"storing the bench district's config failed (exit {proc.exitcode})")
    for home in others:
        shutil.copytree(first, home, symlinks=True)


def _store_config_in(home: Path) -> None:
    """`configured_homes`' work, in the process it starts."""
    store = Store.open(AbacusSettings(home=home, clickhouse=ClickHouseSettings()))
    try:
        store.migrate()
        _, row = district_row(DISTRICT, decode_value(_config_value()))
        store.insert_rows(DISTRICTS, [row])
    finally:
        store.close()
