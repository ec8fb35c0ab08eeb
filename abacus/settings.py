"""The one typed settings tree: environment variables with the ABACUS_ prefix (nested by __)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "AbacusSettings",
    "BrokerSettings",
    "ClickHouseSettings",
    "SmtpSettings",
    "SupervisorSettings",
    "TopicSettings",
    "WebSettings",
]

_FROZEN = ConfigDict(frozen=True)


class BrokerSettings(BaseModel):
    """Kafka. With no ``bootstrap`` the stack starts the embedded Tansu broker on host:port."""

    model_config = _FROZEN
    bootstrap: str | None = None
    host: str = "127.0.0.1"
    port: int = 9092
    # Short group timeouts: joins stall on the local broker with the 300 s default.
    session_timeout_s: float = 6.0
    rebalance_timeout_s: float = 6.0
    heartbeat_interval_s: float = 1.0

    @property
    def embedded(self) -> bool:
        return self.bootstrap is None

    @property
    def servers(self) -> str:
        return self.bootstrap or f"{self.host}:{self.port}"


class ClickHouseSettings(BaseModel):
    """ClickHouse. With no ``url`` the worker opens chDB in-process under ``<home>/chdb``."""

    model_config = _FROZEN
    url: SecretStr | None = None  # http://user:password@host:8123
    database: str = Field(default="abacus", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")

    @property
    def embedded(self) -> bool:
        return self.url is None


class TopicSettings(BaseModel):
    """Topic names and sizes; a prefix isolates tenants of a shared cluster (and tests)."""

    model_config = _FROZEN
    prefix: str = ""
    partitions: int = 4
    events: str = "events"
    dead_letter: str = "events-dlq"
    export_requests: str = "export-requests"
    export_status: str = "export-status"
    roster_users: str = "roster-users"
    roster_students: str = "roster-students"
    roster_links: str = "roster-teacher-students"
    district_config: str = "district-config"
    # The broker epoch and restore markers (abacus.kafka.broker_epoch); compacted, tiny.
    meta: str = "abacus-meta"
    # Retention set when a topic is created (Kafka enforces it; the embedded Tansu keeps
    # everything in memory until it stops). Dead letters are kept until replayed: forever.
    events_retention_ms: int = 7 * 24 * 3600 * 1000

    def name(self, topic: str) -> str:
        return f"{self.prefix}{topic}"


class WebSettings(BaseModel):
    """The worker's HTTP server: health, metrics, downloads."""

    model_config = _FROZEN
    host: str = "127.0.0.1"
    port: int = 6066
    signing_key: SecretStr = SecretStr("change-me-in-production")
    public_url: str | None = None  # base of download links; default http://host:port
    link_ttl_s: int = 7 * 24 * 3600

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"


class SmtpSettings(BaseModel):
    """Mail for export links; disabled while ``host`` is unset."""

    model_config = _FROZEN
    host: str | None = None
    port: int = 25
    sender: str = "abacus@localhost"
    starttls: bool = False
    username: str | None = None
    password: SecretStr | None = None


class SupervisorSettings(BaseModel):
    """`abacus up` restarts a worker that exits on its own, waiting longer each time."""

    model_config = _FROZEN
    backoff_initial_s: float = Field(default=1.0, gt=0)
    backoff_max_s: float = Field(default=30.0, gt=0)
    stable_after_s: float = 60.0  # a worker up this long resets the backoff


class AbacusSettings(BaseSettings):
    """Everything configurable, read once from the environment and passed down."""

    model_config = SettingsConfigDict(
        env_prefix="ABACUS_", env_nested_delimiter="__", frozen=True, extra="ignore"
    )

    home: Path = Field(default_factory=lambda: Path.home() / ".abacus")
    app_id: str = "abacus"
    log_level: str = "info"
    log_json: bool = False
    batch_size: int = 5000  # roster/config agents: records per batch
    # Ingest: records per fetched batch, and the processes that decode/derive/encode
    # them (None = one per core up to 4; 0 = inside the worker process).
    ingest_batch_records: int = Field(default=20_000, ge=1)
    ingest_processes: int | None = Field(default=None, ge=0)
    batch_within_s: float = 0.5
    lag_interval_s: float = 5.0  # how often the worker measures its own consumer lag
    # On SIGTERM/Ctrl-C the worker reads until its ingest lag is 0, or this long (logged).
    drain_timeout_s: float = Field(default=30.0, ge=0)
    # A batch handed over this many times by workers that then died without committing it
    # is dead-lettered whole (reason poison_batch) on the next attempt.
    poison_attempts: int = Field(default=3, ge=1)
    # A dead letter larger than this is replaced by a small pointer record (reason
    # oversized); Kafka's default message.max.bytes is 1 MiB.
    dead_letter_max_bytes: int = Field(default=1_000_000, ge=4096)
    # TEST ONLY, inert when unset: the worker process exits at once (as if it segfaulted)
    # when a batch holds a record with this key. Drives the poison-batch test.
    test_crash_on_key: str | None = None
    broker: BrokerSettings = BrokerSettings()
    clickhouse: ClickHouseSettings = ClickHouseSettings()
    topics: TopicSettings = TopicSettings()
    web: WebSettings = WebSettings()
    smtp: SmtpSettings = SmtpSettings()
    supervisor: SupervisorSettings = SupervisorSettings()

    @property
    def ingest_group(self) -> str:
        """Consumer group of the ingest service (the Faust agents use ``app_id``)."""
        return f"{self.app_id}-ingest"

    @cached_property
    def chdb_path(self) -> Path:
        return self.home / "chdb"

    @cached_property
    def log_dir(self) -> Path:
        return self.home / "logs"

    @cached_property
    def export_dir(self) -> Path:
        return self.home / "exports"

    @cached_property
    def state_dir(self) -> Path:
        """Small local state of this host's worker (ingest attempt records)."""
        return self.home / "state"
