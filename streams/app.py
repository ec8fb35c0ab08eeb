"""The worker: one Faust app hosting every agent that touches ClickHouse, plus the web views,
and the services they share, each passed explicitly."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from functools import partial

import faust

from abacus.kafka_clients import faust_credentials
from abacus.privacy.deny import DenyList
from abacus.settings import AbacusSettings
from abacus.store.store import Store
from streams import lag_monitor, retention, web
from streams.agents import export, privacy, roster
from streams.agents.ingest import IngestService
from streams.agents.roster import RosterService
from streams.data_retention import RetentionService
from streams.districts import DistrictRegistry
from streams.health import Readiness
from streams.lag_monitor import LagMonitor
from streams.metrics import Metrics
from streams.portal.accounts import AccountDirectory
from streams.portal.board import ExportBoard
from streams.rollups import LateKeyLog, RollupService
from streams.web import server

__all__ = ["Worker", "create_worker"]


@dataclass
class Worker:
    """The app and the services of one worker process."""

    app: faust.App
    settings: AbacusSettings
    store: Store
    metrics: Metrics
    readiness: Readiness
    districts: DistrictRegistry
    ingest: IngestService
    roster: RosterService
    lag_monitor: LagMonitor
    # The broker epoch (abacus.kafka.broker_epoch) this worker reads in: stored with each
    # event's offset and in export manifests.
    broker_epoch: str
    accounts: AccountDirectory
    board: ExportBoard
    deny: DenyList = field(default_factory=DenyList)


def _faust_app(settings: AbacusSettings) -> faust.App:
    broker = settings.broker
    return faust.App(
        settings.app_id,
        broker=f"kafka://{broker.servers}",
        broker_credentials=faust_credentials(broker),
        store="memory://",
        datadir=str(settings.home / "faust"),
        web_host=settings.web.host,
        web_port=settings.web.port,
        web_bind=settings.web.host,
        # Faust's own pages (table contents, cluster routes, statistics) are off.
        web=server.URL,
        web_router_enabled=False,
        web_tables_enabled=False,
        web_stats_enabled=False,
        web_graph_enabled=False,
        web_metrics_enabled=False,
        broker_session_timeout=broker.session_timeout_s,
        broker_rebalance_timeout=broker.rebalance_timeout_s,
        broker_heartbeat_interval=broker.heartbeat_interval_s,
        consumer_auto_offset_reset="earliest",
        topic_partitions=settings.topics.partitions,
        topic_allow_declare=False,  # `abacus up` creates topics with their own configs
        topic_disable_leader=True,
        producer_acks=-1,
    )


def _forget_district(
    districts: DistrictRegistry, accounts: AccountDirectory, board: ExportBoard, district_id: str
) -> None:
    """After a district's deletion: its config, staff and export jobs leave memory too."""
    districts.forget(district_id)
    accounts.forget(district_id)
    board.forget(district_id)


def create_worker(settings: AbacusSettings, store: Store, broker_epoch: str) -> Worker:
    """Build the app and register every agent, service and view; nothing connects until the
    worker runs. ``broker_epoch``: the log the worker reads (`ensure_epoch`)."""
    app = _faust_app(settings)
    metrics = Metrics()
    late = LateKeyLog(store, enabled=not settings.bench_skip_rollups)
    districts = DistrictRegistry(store, metrics, late)
    deny = DenyList()  # loaded from the store before the worker runs (streams/run.py)
    ingest = IngestService(settings, store, districts, metrics, broker_epoch, deny)
    app.service(ingest)
    accounts = AccountDirectory(store)
    board = ExportBoard(store, known=lambda district_id: district_id in districts.configs)
    readiness = Readiness()
    roster_service = roster.register(
        app, settings, store, districts, metrics, deny, accounts, readiness
    )
    rollups = RollupService(
        settings, store, late, districts.zones, metrics, deny, ingest_backlog=ingest.backlogged
    )
    app.service(rollups)

    async def barrier() -> None:
        """Before a deletion's steps: ingest's batches stored, the rollup pass done."""
        await ingest.barrier()
        await rollups.barrier()

    exports_lock = asyncio.Lock()  # a deletion and an export never write files at once
    export.register(
        app, settings, store, districts.configs, metrics, broker_epoch, board.on_status,
        exports_lock=exports_lock, want_rollups=rollups.want,
    )  # fmt: skip
    privacy.register(
        app, settings, store, deny, metrics, barrier=barrier,
        forget_district=partial(_forget_district, districts, accounts, board),
        exports_lock=exports_lock,
    )  # fmt: skip
    app.service(RetentionService(settings, store, districts.configs, metrics))

    monitor = lag_monitor.register(app, settings, metrics)
    web.register(
        app, settings, store, metrics, readiness, ingest, accounts, board, districts.configs,
        monitor, hosted=(roster_service,),
    )  # fmt: skip
    retention.register(app, settings)
    return Worker(
        app,
        settings,
        store,
        metrics,
        readiness,
        districts,
        ingest,
        roster_service,
        monitor,
        broker_epoch,
        accounts,
        board,
        deny,
    )
