"""The one typed settings tree: environment variables with the ABACUS_ prefix (nested by __)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "DEFAULT_SIGNING_KEY",
    "AbacusSettings",
    "BrokerSettings",
    "ClickHouseSettings",
    "ExportSettings",
    "PortalSettings",
    "RetentionSettings",
    "RosterSettings",
    "SmtpSettings",
    "SupervisorSettings",
    "TopicSettings",
    "WebSettings",
]

_FROZEN = ConfigDict(frozen=True)
# The development key: `abacus up`/`abacus worker` refuse it unless the web server binds
# to a loopback address (abacus/security.py).
DEFAULT_SIGNING_KEY = "change-me-in-production"


class BrokerSettings(BaseModel):
    """Kafka. With no ``bootstrap`` the stack starts the embedded Tansu broker on host:port.

    An external Kafka may require TLS and/or SASL/SCRAM: every client the code creates
    takes them from here (`abacus/kafka_clients.py`). The embedded broker speaks plaintext
    without authentication and listens on loopback only.
    """

    model_config = _FROZEN
    bootstrap: str | None = None
    host: str = "127.0.0.1"
    port: int = 9092
    # Short group timeouts: joins stall on the local broker with the 300 s default.
    session_timeout_s: float = 6.0
    rebalance_timeout_s: float = 6.0
    heartbeat_interval_s: float = 1.0
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None  # CA bundle that signed the brokers' certificates
    ssl_certfile: Path | None = None  # client certificate (mutual TLS), PEM
    ssl_keyfile: Path | None = None  # its private key, PEM
    ssl_check_hostname: bool = True

    @model_validator(mode="after")
    def _security(self) -> Self:
        if self.security_protocol != "PLAINTEXT" and self.bootstrap is None:
            raise ValueError(
                f"security_protocol {self.security_protocol} needs an external Kafka "
                "(ABACUS_BROKER__BOOTSTRAP); the embedded broker is plaintext on loopback"
            )
        if self.sasl and not (self.sasl_username and self.sasl_password):
            raise ValueError(
                f"security_protocol {self.security_protocol} needs sasl_username and "
                "sasl_password (ABACUS_BROKER__SASL_USERNAME, ABACUS_BROKER__SASL_PASSWORD)"
            )
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise ValueError("ssl_certfile and ssl_keyfile go together (mutual TLS)")
        return self

    @property
    def sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    @property
    def tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

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
    # "separate": a client and thread per lane (ingest, export, the rest), so ingest never
    # waits behind an export's query; "shared": one for everything (the earlier behaviour,
    # kept for the freshness benchmark's baseline).
    lanes: Literal["separate", "shared"] = "separate"

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
    roster_oneroster: str = "roster-oneroster"  # the OneRoster importer's own state
    privacy_requests: str = "privacy-requests"
    privacy_status: str = "privacy-status"
    privacy_deny: str = "privacy-deny"  # compacted: the deny-list, for readers off the worker
    # Kafka's max.compaction.lag.ms on the compacted topics: how long a record superseded by
    # a newer one or by a tombstone (a deleted student's roster record) may stay in the log.
    compaction_lag_ms: int = Field(default=24 * 3600 * 1000, ge=60_000)
    # retention.ms of privacy-requests and privacy-status (a request names its students).
    privacy_retention_ms: int = Field(default=7 * 24 * 3600 * 1000, ge=60_000)
    # The broker epoch and restore markers (abacus.kafka.broker_epoch); compacted, tiny.
    meta: str = "abacus-meta"
    # Retention set when a topic is created (Kafka enforces it; the embedded Tansu keeps
    # everything in memory until it stops).
    events_retention_ms: int = 7 * 24 * 3600 * 1000
    # Dead letters on the topic: a finite bound (what a deleted student's dead letters on the
    # topic live at most); ClickHouse's `dead_letters` keeps them until replayed.
    dead_letter_retention_ms: int = Field(default=30 * 24 * 3600 * 1000, ge=60_000)

    def name(self, topic: str) -> str:
        return f"{self.prefix}{topic}"


class WebSettings(BaseModel):
    """The worker's HTTP server: health, metrics, downloads, the portal."""

    model_config = _FROZEN
    host: str = "127.0.0.1"
    port: int = 6066
    signing_key: SecretStr = SecretStr(DEFAULT_SIGNING_KEY)
    public_url: str | None = None  # base of download links; default http://host:port
    # The operator token of the read-only /ops page (`Authorization: Bearer <token>`);
    # unset: only a signed-in district administrator sees the page.
    ops_token: SecretStr | None = None
    ops_refresh_s: float = Field(default=5.0, gt=0)  # how often an open /ops page refreshes

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def https(self) -> bool:
        """Whether people reach the web over https (then cookies are ``Secure``)."""
        return self.base_url.startswith("https://")


class PortalSettings(BaseModel):
    """The district portal: browser sessions, sign-in throttling, reset links, uploads."""

    model_config = _FROZEN
    session_idle_s: float = Field(default=30 * 60, gt=0)  # signed out after this long idle
    session_max_s: float = Field(default=12 * 3600, gt=0)  # and this long after sign-in
    reset_ttl_s: float = Field(default=30 * 60, gt=0)  # a mailed reset link's validity
    # Failed sign-ins allowed per window, per username and per remote address.
    failures_per_user: int = Field(default=5, ge=1)
    failures_per_address: int = Field(default=20, ge=1)
    failure_window_s: float = Field(default=15 * 60, gt=0)
    poll_s: float = Field(default=2.0, gt=0)  # how often an open exports list refreshes
    max_upload_bytes: int = Field(default=64 << 20, ge=1 << 20)  # a roster upload, 3 files


class RetentionSettings(BaseModel):
    """How long data is kept; a daily job in the worker deletes what is older (0 = forever)."""

    model_config = _FROZEN
    # Raw events of this many school years, the current one included (2 = the current and
    # the previous), in each district's own school year. The aggregates are not affected.
    events_school_years: int = Field(default=2, ge=0)
    audit_days: int = Field(default=3 * 365, ge=0)  # audit_log rows
    interval_s: float = Field(default=24 * 3600, gt=0)  # how often the job runs
    first_run_s: float = Field(default=300, ge=0)  # after the worker starts


class ExportSettings(BaseModel):
    """Export files: how long they and their download links live."""

    model_config = _FROZEN
    # The retention: a link expires this long after its export completed, and the worker
    # then deletes the CSV and its manifest (checked every sweep_interval_s).
    retention_s: int = Field(default=7 * 24 * 3600, ge=1)
    sweep_interval_s: float = Field(default=300.0, gt=0)
    # An export reads the rollups only once they cover every event stored when it started;
    # it waits this long for them (a batch in flight), then reads the facts instead.
    rollup_wait_s: float = Field(default=10.0, ge=0)
    # The rollup service (streams/rollups.py): how often it rebuilds the keys of late facts
    # (every batch since the last time, in one statement per table) and closes ended days,
    # and how long after local midnight a day closes (longer than a batch takes to store).
    rollup_interval_s: float = Field(default=5.0, gt=0)
    rollup_grace_s: float = Field(default=900.0, ge=0)
    # While ingest has a backlog (full batches), a rollup pass waits for it, at most this
    # long after the last pass; an export waiting for the rollups never waits for this.
    rollup_max_defer_s: float = Field(default=60.0, ge=0)


class RosterSettings(BaseModel):
    """Roster uploads: a file over either cap is refused whole, with one line, before
    anything is published. The defaults sit far above a 1M-student district (README)."""

    model_config = _FROZEN
    max_file_bytes: int = Field(default=2 << 30, ge=1)  # per CSV file (uncompressed in a zip)
    max_rows: int = Field(default=20_000_000, ge=1)  # data rows per CSV file


class SmtpSettings(BaseModel):
    """Mail for export links and password resets; disabled while ``host`` is unset."""

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
    batch_size: int = 5000  # roster consumer: records per batch
    # Ingest: records per fetched batch, and the processes that decode/derive/encode
    # them (None = one per core up to 4; 0 = inside the worker process).
    ingest_batch_records: int = Field(default=20_000, ge=1)
    ingest_processes: int | None = Field(default=None, ge=0)
    batch_within_s: float = 0.5
    lag_interval_s: float = 5.0  # how often the worker measures its own consumer lag
    # Burrow-style group status over this many seconds of the lag monitor's samples.
    lag_window_s: float = Field(default=60.0, gt=0)
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
    # BENCHMARK ONLY: ingest writes no late rollup keys and the rollup service does not
    # run (exports then read the facts), to measure what rollups cost ingest
    # (`abacus bench ingest`). Never in production: the rollups would miss those facts.
    bench_skip_rollups: bool = False
    broker: BrokerSettings = BrokerSettings()
    clickhouse: ClickHouseSettings = ClickHouseSettings()
    topics: TopicSettings = TopicSettings()
    web: WebSettings = WebSettings()
    portal: PortalSettings = PortalSettings()
    exports: ExportSettings = ExportSettings()
    roster: RosterSettings = RosterSettings()
    smtp: SmtpSettings = SmtpSettings()
    retention: RetentionSettings = RetentionSettings()
    supervisor: SupervisorSettings = SupervisorSettings()

    @property
    def ingest_group(self) -> str:
        """Consumer group of the ingest service (the Faust agents use ``app_id``)."""
        return f"{self.app_id}-ingest"

    @property
    def roster_group(self) -> str:
        """Consumer group of the roster consumer (roster, district-config, OneRoster state)."""
        return f"{self.app_id}-roster"

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
    def receipts_dir(self) -> Path:
        """Signed deletion receipts, one JSON file per request (also kept in ClickHouse)."""
        return self.home / "privacy" / "receipts"

    @cached_property
    def state_dir(self) -> Path:
        """Small local state of this host's worker (ingest attempt records)."""
        return self.home / "state"
