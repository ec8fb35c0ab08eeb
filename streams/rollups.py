"""The rollups' two halves in the worker (abacus/aggregation/closing.py has the rules).

`LateKeyLog` is ingest's half: a batch with late facts writes their keys to
`rollup_dirty` under a new sequence number BEFORE its facts, and the number stays in
flight until the facts are stored. A batch of today's facts writes nothing.

`RollupService` is the rest, in the background on the store's rollup lane: every
`exports.rollup_interval_s` it rebuilds the keys of every sequence number that is no longer
in flight (many batches, one statement per table) and moves the ``dirty`` mark; then it
builds the days that closed since its last pass, per district. It is background work: its
statements run at the lowest CPU priority (`abacus.store.rollups.BACKGROUND`), and a pass
waits while ingest has a backlog, up to `exports.rollup_max_defer_s`, unless an export is
waiting for it (`abacus.aggregation.closing.pass_due`). Both survive a SIGKILL:
the keys are in the table before their facts, and a restart starts from the marks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time

from mode import Service

from abacus.aggregation.closing import LateKey, closed_through, pass_due
from abacus.aggregation.rollups import by_students
from abacus.errors import StorageError
from abacus.privacy.deny import DenyList
from abacus.settings import AbacusSettings
from abacus.store import rollups
from abacus.store.store import Store
from streams.metrics import Metrics

__all__ = ["LateKeyLog", "RollupService"]

log = logging.getLogger(__name__)
_PRUNE_EVERY_S = 600.0  # rebuilt late keys are deleted at most this often
# Late keys per rebuild statement: bounds the worker's memory while a backlog is rebuilt
# (a whole backlog in one statement took the worker past 1 GiB in `abacus bench ingest`).
_KEYS_PER_STATEMENT = 20_000
_RECHECK_S = 0.25  # while a pass waits for ingest's backlog, how often it looks again


class LateKeyLog:
    """Sequence numbers for the late keys of stored batches, and which are in flight."""

    def __init__(self, store: Store, *, enabled: bool = True) -> None:
        self.store = store
        # False only for `abacus bench ingest`'s comparison run (ABACUS_BENCH_SKIP_ROLLUPS).
        self.enabled = enabled
        self._last = 0
        self._inflight: set[int] = set()

    def load(self, written: int) -> None:
        """At worker start (before ingest runs): the last sequence number written."""
        self._last = max(self._last, written)

    def begin(self) -> int | None:
        """A new sequence number, in flight until `stored` (None when disabled)."""
        if not self.enabled:
            return None
        # Nanoseconds since the epoch, so numbers keep growing across restarts.
        seq = max(time.time_ns(), self._last + 1)
        self._last = seq
        self._inflight.add(seq)
        return seq

    async def mark(self, keys: Sequence[LateKey]) -> int | None:
        """Write a batch's late keys, before its facts; its sequence number (None: none)."""
        if not keys or (seq := self.begin()) is None:
            return None
        await self.store.awrite_dirty(seq, keys)
        return seq

    def stored(self, seq: int | None) -> None:
        """The batch of ``seq`` has its facts stored."""
        if seq is not None:
            self._inflight.discard(seq)

    @property
    def last(self) -> int:
        """The last sequence number given out."""
        return self._last

    def safe_point(self) -> int:
        """Every sequence number up to this one has its keys and its facts stored."""
        return min(self._inflight) - 1 if self._inflight else self._last


class RollupService(Service):
    """Rebuilds late keys and closes ended days, every ``rollup_interval_s``."""

    def __init__(
        self,
        settings: AbacusSettings,
        store: Store,
        late: LateKeyLog,
        zones: Callable[[], dict[str, str]],
        metrics: Metrics,
        deny: DenyList,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        ingest_backlog: Callable[[], bool] = lambda: False,
    ) -> None:
        super().__init__()
        # Whether ingest is handing over full batches (IngestService.backlogged).
        self.ingest_backlog = ingest_backlog
        self._wanted = asyncio.Event()  # an export waits for the rollups (`want`)
        self.settings = settings
        self.store = store
        self.late = late
        self.zones = zones
        self.metrics = metrics
        # Deleted students' keys and deleted districts' days are never rebuilt, so a pass
        # cannot bring back what a privacy deletion removed (see `barrier`).
        self.deny = deny
        self._pass = asyncio.Lock()
        self.now = now
        self.done = 0  # the last late sequence number rebuilt (read from the store first)
        self._pruned_at = time.monotonic()
        self._pruned = 0
        self._closed: dict[str, date] = {}  # as of the last pass
        metrics.rollups_behind.set_function(self.behind)

    def behind(self) -> float:
        """Late-key batches not yet rebuilt (0 or 1) plus districts with a closed day not
        yet built (the gauge `abacus_rollups_behind`)."""
        grace = timedelta(seconds=self.settings.exports.rollup_grace_s)
        now = self.now()
        open_days = sum(
            1
            for district, zone in self.zones().items()
            if (self._closed.get(district) or date.min) < closed_through(now, zone, grace)
        )
        return float(self.late.enabled) * (int(self.late.last > self.done) + open_days)

    def want(self) -> None:
        """An export is waiting for the rollups: the next pass runs now."""
        self._wanted.set()

    async def barrier(self) -> None:
        """Wait for a pass in progress (a privacy deletion, after updating the deny-list:
        later passes leave the denied students alone)."""
        async with self._pass:
            return

    async def run_once(self, *, background: bool = True) -> None:
        """One pass: late keys, then ended days (``background``: at the lowest CPU
        priority; an export waiting for it is not)."""
        async with self._pass:
            await self._run_once(background)

    def _allowed(self, keys: list[LateKey]) -> list[LateKey]:
        if not len(self.deny):
            return keys
        return [
            k
            for k in keys
            if not self.deny.denies(k[0], k[1], datetime.combine(k[2], dt_time(), UTC))
        ]

    async def _run_once(self, background: bool) -> None:
        started = time.perf_counter()
        closed, done, _ = await self.store.arollup_marks()
        self.done = max(self.done, done)
        safe = self.late.safe_point()
        if safe > self.done:
            keys = self._allowed(await self.store.alate_keys(self.done, safe))
            for chunk in by_students(keys, _KEYS_PER_STATEMENT):
                await self.store.arebuild_rollups(chunk, background=background)
            await self.store.arollup_mark("", rollups.DIRTY, safe)
            log.debug("rollups: %d late key(s) rebuilt", len(keys))
            self.done = safe
        grace = timedelta(seconds=self.settings.exports.rollup_grace_s)
        now = self.now()
        for district, zone in sorted(self.zones().items()):
            if self.deny.district_denied(district, now):
                continue  # being deleted: its config is forgotten once it is
            through = closed_through(now, zone, grace)
            after = closed.get(district)
            if after is None or after < through:
                await self.store.aclose_rollup_days(district, after, through, background=background)
                log.info("rollups: days through %s closed for a district", through)
                closed[district] = through
        self._closed = closed
        if self.done > self._pruned and time.monotonic() - self._pruned_at > _PRUNE_EVERY_S:
            await self.store.aprune_dirty(self.done)
            self._pruned, self._pruned_at = self.done, time.monotonic()
        self.metrics.rollup_seconds.observe(time.perf_counter() - started)

    @Service.task
    async def _every_interval(self) -> None:
        if not self.late.enabled:
            return
        exports = self.settings.exports
        # Monotonic time the last pass ended; at start, as if one had ended an interval ago:
        # the first pass is due now, and held back like any other while ingest has a
        # backlog (a worker restarted behind its topic rebuilt every late key and closed
        # every past day at once, on the cores its backlog needed).
        last = time.monotonic() - exports.rollup_interval_s
        while not self.should_stop:
            since = time.monotonic() - last
            due = pass_due(
                since_last_s=since, interval_s=exports.rollup_interval_s,
                ingest_backlog=self.ingest_backlog(), export_waiting=self._wanted.is_set(),
                max_defer_s=exports.rollup_max_defer_s,
            )  # fmt: skip
            if due:
                wanted = self._wanted.is_set()
                self._wanted.clear()
                try:
                    await self.run_once(background=not wanted)
                except StorageError as exc:  # tried again at the next interval
                    log.warning("rollups not maintained this pass: %s", exc)
                last, since = time.monotonic(), 0.0
            # The rest of the interval; past it (held back by ingest's backlog), a recheck.
            left = exports.rollup_interval_s - since
            await self.wait(self._wanted, timeout=left if left > 0 else _RECHECK_S)
