"""A store's lanes: each one ClickHouse client and the one thread that owns it.

Lanes run side by side; the calls on one lane run one after the other, in the order they
are made. Ingest writes take `INGEST`, the export's query stream `EXPORT`, the rollup
service's rebuilds `ROLLUP`, and everything else `SERVICE`, so an export streaming for
half a minute never holds an ingest insert back. Measured on chDB 26.9 through
clickhouse-connect 1.12 (docs/architecture.md): two clients on one chDB path in one process
run concurrently, while one client used from two threads serialises every call behind the
open stream.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from clickhouse_connect.driver.client import Client

__all__ = ["EXPORT", "INGEST", "LANES", "ROLLUP", "SERVICE", "Lane", "Lanes"]

INGEST = "ingest"  # the ingest service's writes: events, facts, pending, dead letters
EXPORT = "export"  # the export query stream and the manifest's figures
ROLLUP = "rollup"  # the rollup service's rebuilds (streams/rollups.py), seconds each
SERVICE = "service"  # everything else: roster, web, claims, reads, migrations
LANES = (SERVICE, INGEST, EXPORT, ROLLUP)


class Lane:
    """One client and the one thread that owns it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"clickhouse-{name}")
        self.owner = self.pool.submit(threading.current_thread).result()
        self.client: Client | None = None


class Lanes:
    """Every lane of one store; ``separate=False`` maps every name to one lane (one client
    for everything). ``open_client`` runs on each lane's own thread."""

    def __init__(self, open_client: Callable[[], Client], *, separate: bool) -> None:
        self._distinct = [Lane(name) for name in (LANES if separate else (SERVICE,))]
        self._by_name = {lane.name: lane for lane in self._distinct}
        for name in LANES:
            self._by_name.setdefault(name, self._by_name[SERVICE])
        try:
            for lane in self._distinct:
                lane.client = lane.pool.submit(open_client).result()
        except BaseException:
            self.shutdown()
            raise

    def __getitem__(self, name: str) -> Lane:
        return self._by_name[name]

    def client(self) -> Client:
        """The client of the lane whose thread runs this; elsewhere the service lane's
        (the callers that pass a client along run it there)."""
        current = threading.current_thread()
        lane = next((ln for ln in self._distinct if ln.owner is current), self[SERVICE])
        assert lane.client is not None
        return lane.client

    def close(self, run: Callable[[Callable[[], None]], None]) -> None:
        """Close each client on its lane's thread (through ``run``), then stop the threads."""
        try:
            for lane in self._distinct:
                if lane.client is not None:
                    lane.pool.submit(run, lane.client.close).result()
        finally:
            self.shutdown()

    def shutdown(self) -> None:
        for lane in self._distinct:
            lane.pool.shutdown(wait=True)
