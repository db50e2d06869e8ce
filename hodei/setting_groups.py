"""The settings groups, one per concern, and `setting()`, the one way to declare an
option (its default, bounds, meaning, HODEI_* variable and flag). hodei.settings builds
the one Settings object from them; import both from there."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.fields import FieldInfo

ENV_PREFIX = "HODEI_"
#: The switch that allows fault injection (faults.*): the harness sets it, production never.
TESTING_ENV = "HODEI_TESTING"


def default_data_dir() -> Path:
    # Per-user data dir for the embedded PostgreSQL (XDG on Linux).
    import platformdirs  # pulled in by pgserver; imported lazily to keep start-up light

    return Path(platformdirs.user_data_dir("hodei")) / "pgdata"


def setting(
    default: Any, env: str, help: str, *, flag: str | None = None, **constraints: Any
) -> Any:
    """Declare one option: default, HODEI_* variable, meaning, optional CLI flag, bounds.

    A flag on a bool that defaults to True is a switch that turns it off
    (``--no-dispatcher``); any other flag takes a value.
    """
    extra: dict[str, Any] = {"env": env}
    if flag:
        extra["flag"] = flag
    return Field(default, description=help, json_schema_extra=extra, **constraints)


def _check_fernet_key(key: str, problem: str) -> None:
    """ValueError(`problem`, and how to make a key) when `key` is not a Fernet key. The
    value itself is never quoted: it is a secret."""
    from cryptography.fernet import Fernet  # imported here: only servers need it

    try:
        Fernet(key)
    except (ValueError, TypeError):
        raise ValueError(
            f"{problem} (32 url-safe base64-encoded bytes; make one with "
            '`python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())"`)'
        ) from None


class _Group(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseSettings(_Group):
    url: str | None = setting(
        None,
        "HODEI_DATABASE_URL",
        "PostgreSQL URL; empty means the embedded PostgreSQL",
        flag="--database-url",
    )
    data_dir: Path | None = setting(
        None,
        "HODEI_DATA_DIR",
        "data directory of the embedded PostgreSQL (default: the per-user data dir)",
        flag="--data-dir",
    )
    pool_min: int = setting(2, "HODEI_DB_POOL_MIN", "connections the server keeps open", ge=1)
    pool_max: int = setting(10, "HODEI_DB_POOL_MAX", "most connections the server opens", ge=1)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must start with postgresql://")
        return value


class ServerSettings(_Group):
    host: str = setting("127.0.0.1", "HODEI_HOST", "address the server listens on", flag="--host")
    port: int = setting(
        50051,
        "HODEI_PORT",
        "gRPC port the server listens on (0: any)",
        flag="--port",
        ge=0,
        le=65535,
    )
    address: str = setting(
        "127.0.0.1:50051",
        "HODEI_SERVER_ADDRESS",
        "HOST:PORT where the CLI and the workers reach the server",
        flag="--server",
    )
    id: str | None = setting(None, "HODEI_SERVER_ID", "server id (default: host:pid:random)")
    outbox_relay_enabled: bool = setting(
        True,
        "HODEI_OUTBOX_RELAY_ENABLED",
        "publish job events from the outbox (off only to simulate a fault)",
        flag="--no-outbox-relay",
    )
    outbox_channel: str = setting(
        "hodei_outbox", "HODEI_OUTBOX_CHANNEL", "PostgreSQL channel the outbox relay notifies"
    )
    outbox_poll_interval: float = setting(
        0.5, "HODEI_OUTBOX_POLL_INTERVAL", "outbox relay poll period without a wake-up, s", gt=0
    )
    default_max_attempts: int = setting(
        3, "HODEI_DEFAULT_MAX_ATTEMPTS", "attempts of a job that does not say", ge=1
    )
    # HTTP/2 keepalive; the worker and the CLI dial with the same values.
    keepalive_time_ms: int = setting(
        10_000, "HODEI_KEEPALIVE_TIME_MS", "HTTP/2 keepalive ping period (both sides), ms", ge=1
    )
    keepalive_timeout_ms: int = setting(
        60_000,
        "HODEI_KEEPALIVE_TIMEOUT_MS",
        "HTTP/2 keepalive ping answer deadline (both sides), ms",
        ge=1,
    )
    min_ping_interval_ms: int = setting(
        5_000,
        "HODEI_SERVER_MIN_PING_INTERVAL_MS",
        "shortest ping period the server accepts from a client, ms",
        ge=1,
    )

    secret_key: str | None = setting(
        None,
        "HODEI_SECRET_KEY",
        "Fernet key encrypting secret env values at rest (none: secret env is refused)",
    )

    previous_secret_keys: str | None = setting(
        None,
        "HODEI_PREVIOUS_SECRET_KEYS",
        "Fernet keys, comma-separated, that only decrypt secret env: during a key "
        "rotation the next key, then the earlier one (`hodei db reseal-secrets` moves "
        "the stored jobs to the current key)",
    )

    @field_validator("secret_key")
    @classmethod
    def _check_secret_key(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        _check_fernet_key(value.strip(), "not a Fernet key")
        return value.strip()

    @field_validator("previous_secret_keys")
    @classmethod
    def _check_previous_secret_keys(cls, value: str | None) -> str | None:
        keys = [key.strip() for key in (value or "").split(",") if key.strip()]
        for number, key in enumerate(keys, 1):
            _check_fernet_key(key, f"key {number} of {len(keys)} is not a Fernet key")
        return ",".join(keys) or None

    @model_validator(mode="after")
    def _previous_keys_need_a_key(self) -> ServerSettings:
        if self.previous_secret_keys and not self.secret_key:
            raise ValueError(
                "HODEI_PREVIOUS_SECRET_KEYS needs HODEI_SECRET_KEY: the previous keys "
                "only decrypt, the current one encrypts"
            )
        return self

    @property
    def previous_secret_key_list(self) -> list[str]:
        return self.previous_secret_keys.split(",") if self.previous_secret_keys else []

    @property
    def listen_address(self) -> str:
        return f"{self.host}:{self.port}"


class DispatcherSettings(_Group):
    enabled: bool = setting(
        True,
        "HODEI_DISPATCHER_ENABLED",
        "assign queued jobs to workers (off only to simulate a fault)",
        flag="--no-dispatcher",
    )
    #: QueueJob assigns the job in its own statement when this server has a READY
    #: worker with a free slot and nothing is waiting (only with the dispatcher on).
    eager: bool = setting(
        True, "HODEI_EAGER_DISPATCH", "assign a job in QueueJob itself when a slot is free"
    )
    poll_interval: float = setting(
        1.0, "HODEI_DISPATCH_POLL_INTERVAL", "dispatch pass period without a wake-up, s", gt=0
    )
    batch_size: int = setting(64, "HODEI_DISPATCH_BATCH_SIZE", "jobs assigned per pass", ge=1)
    ack_timeout: float = setting(
        10.0, "HODEI_ACK_TIMEOUT", "RunJob -> JobAck deadline before a job is requeued, s", gt=0
    )


class SubmissionSettings(_Group):
    #: A key older than this is unknown again: a new submission with it queues a new
    #: job. prune_submission_keys deletes such keys.
    idempotency_window: float = setting(
        24 * 3600.0,
        "HODEI_IDEMPOTENCY_WINDOW",
        "how long a submission's idempotency key is remembered, s",
        gt=0,
        le=30 * 24 * 3600.0,
    )


class RecoverySettings(_Group):
    heartbeat_interval: float = setting(
        5.0, "HODEI_HEARTBEAT_INTERVAL", "worker heartbeat period (told to workers), s", gt=0
    )
    heartbeat_miss_limit: int = setting(
        3, "HODEI_HEARTBEAT_MISS_LIMIT", "missed heartbeats before a worker is LOST", ge=1
    )
    reaper_interval: float = setting(
        1.0, "HODEI_REAPER_INTERVAL", "period of the lost-worker and deadline sweep, s", gt=0
    )
    cancel_grace_seconds: float = setting(
        5.0, "HODEI_CANCEL_GRACE_SECONDS", "how long a cancel may take on a worker, s", ge=0
    )


class RetentionSettings(_Group):
    """How long finished work is kept (hodei.db.retention); an age of 0 keeps it forever.
    The server prunes in the background; `hodei db prune` does the same on demand."""

    enabled: bool = setting(
        True,
        "HODEI_RETENTION_ENABLED",
        "prune old rows in the background (`hodei db prune` works regardless)",
    )
    interval: float = setting(
        60.0, "HODEI_RETENTION_INTERVAL", "period of the background pruning round, s", gt=0
    )
    jobs_age: float = setting(
        7 * 86400.0,
        "HODEI_RETENTION_JOBS_AGE",
        "finished jobs, their log lines and events are deleted this long after they end, s",
        flag="--jobs-age",
        ge=0,
    )
    outbox_age: float = setting(
        86400.0,
        "HODEI_RETENTION_OUTBOX_AGE",
        "published outbox rows are deleted this long after publication, s",
        flag="--outbox-age",
        ge=0,
    )
    workers_age: float = setting(
        86400.0,
        "HODEI_RETENTION_WORKERS_AGE",
        "TERMINATED and LOST workers (and their events) are deleted this long after, s",
        flag="--workers-age",
        ge=0,
    )
    registrations_age: float = setting(
        600.0,
        "HODEI_RETENTION_REGISTRATIONS_AGE",
        "registrations that never opened a stream are deleted this long after, s",
        flag="--registrations-age",
        ge=0,
    )
    batch_size: int = setting(
        500,
        "HODEI_RETENTION_BATCH_SIZE",
        "most rows (jobs, workers, outbox rows) one delete statement takes",
        flag="--batch-size",
        ge=1,
        le=100_000,
    )
    batch_log_lines: int = setting(
        50_000,
        "HODEI_RETENTION_BATCH_LOG_LINES",
        "a batch of jobs stops at this many log lines (a bigger job goes alone)",
        ge=1,
    )
    batch_pause: float = setting(
        0.05, "HODEI_RETENTION_BATCH_PAUSE", "pause between two delete batches, s", ge=0, le=60
    )


class AuthSettings(_Group):
    """Authentication of the server's callers (hodei.server.api.auth)."""

    mode: Literal["required", "off"] = setting(
        "required",
        "HODEI_AUTH",
        "required: every call but health needs a token; off: loopback only, or HODEI_INSECURE",
        flag="--auth",
    )
    insecure: bool = setting(
        False,
        "HODEI_INSECURE",
        "serve without authentication on any address (said at start, in server info)",
    )
    cache_seconds: float = setting(
        5.0,
        "HODEI_AUTH_CACHE_SECONDS",
        "a checked token is trusted this long (a revocation takes effect within it), s",
        ge=0,
        le=300,
    )

    @property
    def enabled(self) -> bool:
        return self.mode == "required" and not self.insecure


class LoggingSettings(_Group):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = setting(
        "INFO", "HODEI_LOG_LEVEL", "DEBUG, INFO, WARNING or ERROR", flag="--log-level"
    )
    format: Literal["text", "json"] = setting(
        "text", "HODEI_LOG_FORMAT", "text or json (one object a line)", flag="--log-format"
    )
    file: Path | None = setting(
        None, "HODEI_LOG_FILE", "write the log here instead of stderr", flag="--log-file"
    )

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


class ClientSettings(_Group):
    #: Never printed or logged. Unset: the CLI looks in the data directory (`hodei up`).
    token: str = setting(
        "",
        "HODEI_TOKEN",
        "bearer token of the CLI, a worker, hodei-diagnose (default: the `hodei up` one)",
        flag="--token",
    )
    #: The CLI's submissions (`job submit`, `job run`) carry an idempotency key, so a
    #: call the server did not answer can be sent again without queueing twice.
    submit_retry: float = setting(
        30.0,
        "HODEI_SUBMIT_RETRY",
        "how long the CLI retries a submission the server did not answer, s (0: never)",
        ge=0,
        le=3600,
    )


class TlsSettings(_Group):
    """TLS on the gRPC port. The server side (cert, key, client_ca) is read by the
    server; the client side (ca, client_cert, client_key, server_name) by the CLI, the
    worker, hodei-diagnose and the harness. Files are read once at start: a renewed
    certificate takes effect at the next restart."""

    cert: Path | None = setting(
        None,
        "HODEI_TLS_CERT",
        "server: PEM certificate chain; set: the port speaks TLS",
        flag="--tls-cert",
    )
    key: Path | None = setting(
        None, "HODEI_TLS_KEY", "server: PEM private key of HODEI_TLS_CERT", flag="--tls-key"
    )
    client_ca: Path | None = setting(
        None,
        "HODEI_TLS_CLIENT_CA",
        "server: PEM CA; set: clients must show a certificate it signed (mTLS)",
        flag="--tls-client-ca",
    )
    ca: Path | None = setting(
        None,
        "HODEI_TLS_CA",
        "clients: PEM CA that signed the server's certificate; set: connect with TLS",
        flag="--tls-ca",
    )
    client_cert: Path | None = setting(
        None,
        "HODEI_TLS_CLIENT_CERT",
        "clients: PEM certificate shown to the server (mTLS)",
        flag="--tls-client-cert",
    )
    client_key: Path | None = setting(
        None,
        "HODEI_TLS_CLIENT_KEY",
        "clients: PEM private key of HODEI_TLS_CLIENT_CERT",
        flag="--tls-client-key",
    )
    server_name: str | None = setting(
        None,
        "HODEI_TLS_SERVER_NAME",
        "clients: name to verify in the server's certificate (default: the address's host)",
        flag="--tls-server-name",
        max_length=253,
    )

    @field_validator("*", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # HODEI_TLS_CA= in a compose file means "no TLS", not "the current directory".
        return None if value == "" else value

    @model_validator(mode="after")
    def _pairs(self) -> TlsSettings:
        pairs = (
            ("cert", "key", "is set without"),
            ("key", "cert", "is set without"),
            ("client_ca", "cert", "(mTLS) needs TLS on the server:"),
            ("client_cert", "client_key", "is set without"),
            ("client_key", "client_cert", "is set without"),
            ("client_cert", "ca", "(mTLS) needs TLS on the client:"),
            ("server_name", "ca", "is used only with TLS:"),
        )
        fields = type(self).model_fields
        for given, needed, words in pairs:
            if getattr(self, given) is not None and getattr(self, needed) is None:
                raise ValueError(
                    f"{env_of(fields[given])} {words} set {env_of(fields[needed])} too"
                    if words.endswith(":")
                    else f"{env_of(fields[given])} {words} {env_of(fields[needed])}"
                )
        return self

    @property
    def server_enabled(self) -> bool:
        return self.cert is not None

    @property
    def client_enabled(self) -> bool:
        return self.ca is not None


class FaultSettings(_Group):
    """Fault injection for the harness's own tests: they break the platform on purpose,
    so they are refused unless the testing switch is on."""

    testing: bool = setting(False, TESTING_ENV, "allow the fault-injection settings below")
    drop_logs: bool = setting(
        False, "HODEI_FAULT_DROP_LOGS", "fault: the worker runs jobs but never sends their output"
    )
    clock_offset_s: float = setting(
        0.0,
        "HODEI_FAULT_CLOCK_OFFSET_S",
        "fault: this process's clock as it reports it (worker: Hello and heartbeats; "
        "server: server_status heartbeat) is off by this, s",
    )

    @model_validator(mode="after")
    def _only_when_testing(self) -> FaultSettings:
        injected = [
            name
            for name, info in type(self).model_fields.items()
            if name != "testing" and getattr(self, name) != info.default
        ]
        if injected and not self.testing:
            names = ", ".join(env_of(type(self).model_fields[n]) for n in injected)
            raise ValueError(
                f"{names} injects a fault and is refused unless {TESTING_ENV}=true "
                "(fault injection is for the e2e harness's own tests, never production)"
            )
        return self


def env_of(info: FieldInfo) -> str:
    extra = info.json_schema_extra
    assert isinstance(extra, dict), "every setting is declared with setting()"
    return str(extra["env"])
