"""The worker: one Faust app hosting every agent that touches ClickHouse, plus the web views,
and the services they share, each passed explicitly."""

from __future__ import annotations

from dataclasses import dataclass

import faust

from abacus.kafka_clients import faust_credentials
from abacus.settings import AbacusSettings
from abacus.store.store import Store
from streams import lag_monitor, retention, web
from streams.agents import export, roster
from streams.agents.ingest import IngestService
from streams.districts import DistrictRegistry
from streams.health import Readiness
from streams.lag_monitor import LagMonitor
from streams.metrics import Metrics
from streams.portal.accounts import AccountDirectory
from streams.portal.board import ExportBoard
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
    lag_monitor: LagMonitor
    # The broker epoch (abacus.kafka.broker_epoch) this worker reads in: stored with each
    # event's offset and in export manifests.
    broker_epoch: str
    accounts: AccountDirectory
    board: ExportBoard


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


def create_worker(settings: AbacusSettings, store: Store, broker_epoch: str) -> Worker:
    """Build the app and register every agent, service and view; nothing connects until the
    worker runs. ``broker_epoch``: the log the worker reads (`ensure_epoch`)."""
    app = _faust_app(settings)
    metrics = Metrics()
    districts = DistrictRegistry(store, metrics)
    ingest = IngestService(settings, store, districts, metrics, broker_epoch)
    app.service(ingest)
    accounts = AccountDirectory(store)
    board = ExportBoard(store)
    roster.register(app, settings, store, districts, metrics, accounts)
    export.register(app, settings, store, districts.configs, metrics, broker_epoch, board.on_status)
    readiness = Readiness()
    web.register(
        app, settings, store, metrics, readiness, ingest, accounts, board, districts.configs
    )
    monitor = lag_monitor.register(app, settings, metrics)
    retention.register(app, settings)
    return Worker(
        app,
        settings,
        store,
        metrics,
        readiness,
        districts,
        ingest,
        monitor,
        broker_epoch,
        accounts,
        board,
    )
