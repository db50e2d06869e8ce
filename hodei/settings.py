"""The one settings object. Built once at an entry point (CLI, test fixture) and
passed down; nothing else in Hodei reads the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from hodei.errors import ConfigError


def default_data_dir() -> Path:
    # Per-user data dir for the embedded PostgreSQL (XDG on Linux).
    import platformdirs  # pulled in by pgserver; imported lazily to keep start-up light

    return Path(platformdirs.user_data_dir("hodei")) / "pgdata"


class Settings(BaseSettings):
    """Every knob of the platform, from `HODEI_*` environment variables or arguments."""

    model_config = SettingsConfigDict(env_prefix="HODEI_", extra="forbid", frozen=True)

    # --- database --------------------------------------------------------------
    database_url: str | None = Field(
        default=None, description="PostgreSQL URL; empty means the embedded pgserver"
    )
    data_dir: Path | None = Field(
        default=None, description="Data directory of the embedded PostgreSQL"
    )
    db_pool_min: int = Field(default=2, ge=1)
    db_pool_max: int = Field(default=10, ge=1)

    # --- server ----------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(default=50051, ge=0, le=65535)
    server_id: str | None = Field(default=None, description="Defaults to host:pid:random")
    dispatcher_enabled: bool = True
    #: QueueJob assigns the job in its own statement when this server has a READY
    #: worker with a free slot and nothing is waiting (only with the dispatcher on).
    eager_dispatch: bool = True
    outbox_relay_enabled: bool = True
    dispatch_poll_interval: float = Field(default=1.0, gt=0)
    dispatch_batch_size: int = Field(default=64, ge=1)
    ack_timeout: float = Field(default=10.0, gt=0, description="RunJob -> JobAck deadline, s")
    heartbeat_interval: float = Field(default=5.0, gt=0)
    heartbeat_miss_limit: int = Field(default=3, ge=1)
    reaper_interval: float = Field(default=1.0, gt=0)
    outbox_channel: str = "hodei_outbox"
    outbox_poll_interval: float = Field(default=0.5, gt=0)
    default_max_attempts: int = Field(default=3, ge=1)
    cancel_grace_seconds: float = Field(default=5.0, ge=0)

    # --- HTTP/2 keepalive (both sides) ------------------------------------------
    keepalive_time_ms: int = Field(default=10_000, ge=1)
    keepalive_timeout_ms: int = Field(default=60_000, ge=1)
    server_min_ping_interval_ms: int = Field(default=5_000, ge=1)

    # --- worker ----------------------------------------------------------------
    server_address: str = "127.0.0.1:50051"
    worker_name: str = ""
    slots: int = Field(default=1, ge=1, le=1024)
    log_batch_lines: int = Field(default=2000, ge=1)
    log_batch_interval: float = Field(default=0.05, gt=0)
    reconnect_max_backoff: float = Field(default=10.0, gt=0)
    # SIGTERM -> SIGKILL delay when the worker stops a job's process group.
    worker_kill_grace: float = Field(default=5.0, ge=0)
    # On SIGINT/SIGTERM: how long running jobs may finish before they are stopped,
    # then how long to wait for the server to confirm the buffered results.
    worker_shutdown_grace: float = Field(default=30.0, ge=0)
    worker_flush_timeout: float = Field(default=5.0, ge=0)
    # A longer output line is split into pieces of this many bytes.
    worker_max_line_bytes: int = Field(default=1024 * 1024, ge=64)
    # Output of one job held unconfirmed by the server; beyond it the job's pipe is
    # not read (the job waits on its writes) until the server catches up.
    worker_log_buffer_bytes: int = Field(default=256 * 1024 * 1024, ge=1024)
    # Fault injection for the harness's own tests: a worker that runs jobs but
    # never streams their output. Never set in production.
    fault_drop_logs: bool = False

    # --- logging ---------------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    log_file: Path | None = None

    @field_validator("database_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must start with postgresql://")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @property
    def listen_address(self) -> str:
        return f"{self.host}:{self.port}"


def load_settings(**overrides: object) -> Settings:
    """Build Settings from the environment plus explicit overrides (None values are ignored).

    Raises ConfigError with a one-line message instead of pydantic's report.
    """
    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**clean)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "settings"
        message = first.get("msg", "invalid value")
        raise ConfigError(f"invalid setting {where!r}: {message}") from None
