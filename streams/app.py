"""The Faust app: one worker hosting every agent that touches ClickHouse, plus the web views."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import faust

from abacus.district import DistrictConfig
from abacus.settings import AbacusSettings
from abacus.store.client import connect
from abacus.store.writer import BlockWriter
from streams.health import Readiness
from streams.metrics import Metrics

__all__ = ["Runtime", "create_app"]

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """What agents share inside one worker: settings, the store writer and the counters."""

    settings: AbacusSettings
    writer: BlockWriter
    metrics: Metrics
    # District configs known to this worker (loaded from ClickHouse at start, kept current
    # by the roster agent). Ingest derives local-day facts only for known districts.
    districts: dict[str, DistrictConfig] = field(default_factory=dict)
    # Called after a district config is stored (new or changed), e.g. to derive facts of
    # events that arrived before their district was configured.
    district_listeners: list[Callable[[DistrictConfig], Awaitable[None]]] = field(
        default_factory=list
    )
    readiness: Readiness = field(default_factory=Readiness)
    ingest: Any = None  # the IngestService, once registered
    # The broker epoch (abacus.broker_epoch) the worker reads in; set before it starts.
    broker_epoch: str = ""
    # Set when the worker stops for good (e.g. records it cannot decompress): its exit
    # status, which `abacus up` does not restart.
    exit_code: int | None = None


def create_app(settings: AbacusSettings, *, broker_epoch: str = "") -> faust.App:
    """Build the app and register every agent and view; nothing connects until it runs."""
    broker = settings.broker
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{broker.servers}",
        store="memory://",
        datadir=str(settings.home / "faust"),
        web_host=settings.web.host,
        web_port=settings.web.port,
        web_bind=settings.web.host,
        broker_session_timeout=broker.session_timeout_s,
        broker_rebalance_timeout=broker.rebalance_timeout_s,
        broker_heartbeat_interval=broker.heartbeat_interval_s,
        consumer_auto_offset_reset="earliest",
        topic_partitions=settings.topics.partitions,
        topic_allow_declare=False,  # `abacus up` creates topics with their own configs
        topic_disable_leader=True,
        producer_acks=-1,
    )
    runtime = Runtime(
        settings=settings,
        writer=BlockWriter(connect(settings), settings.clickhouse.database),
        metrics=Metrics(),
        broker_epoch=broker_epoch,
    )
    app.abacus_runtime = runtime  # type: ignore[attr-defined]

    from streams import lag_monitor, web
    from streams.agents import export, ingest, roster

    runtime.ingest = ingest.register(app, runtime)
    roster.register(app, runtime)
    export.register(app, runtime)
    web.register(app, runtime)
    lag_monitor.register(app, runtime)
    return app
