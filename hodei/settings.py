"""The one settings object. Built once at an entry point (CLI, test fixture) and
passed down; nothing else in Hodei reads the environment.

Settings are nested by concern (``settings.database.url``, ``settings.worker.slots``)
and each option is declared once, here: its type, default, bounds, meaning, its
``HODEI_*`` environment variable and, when it has one, its command-line flag. The
CLI builds its flags from these declarations (hodei.flags) and the README's
configuration table lists them (a test keeps the two in step).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from hodei.broker_settings import BrokerSettings
from hodei.errors import ConfigError
from hodei.scaling_settings import ScalingSettings
from hodei.setting_groups import (  # noqa: F401  (re-exported: import settings from here)
    ENV_PREFIX,
    TESTING_ENV,
    AuthSettings,
    ClientSettings,
    DatabaseSettings,
    DispatcherSettings,
    FaultSettings,
    LoggingSettings,
    RecoverySettings,
    RetentionSettings,
    ServerSettings,
    SubmissionSettings,
    TlsSettings,
    _Group,
    default_data_dir,
    env_of,
    setting,
)
from hodei.telemetry_settings import MetricsSettings, TracingSettings
from hodei.worker_settings import WorkerSettings


class _EnvSource(PydanticBaseSettingsSource):
    """Reads each nested field from its own HODEI_* variable (the names predate the
    nesting and are kept: README, compose files and deployments use them)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads every field itself

    def __call__(self) -> dict[str, Any]:
        environ = {key.upper(): value for key, value in os.environ.items()}
        values: dict[str, dict[str, str]] = {}
        for field in setting_fields():
            if field.env in environ:
                values.setdefault(field.group, {})[field.name] = environ[field.env]
        return values


class Settings(BaseSettings):
    """Every knob of the platform, from `HODEI_*` environment variables or arguments."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    database: DatabaseSettings = DatabaseSettings()
    server: ServerSettings = ServerSettings()
    dispatcher: DispatcherSettings = DispatcherSettings()
    submission: SubmissionSettings = SubmissionSettings()
    recovery: RecoverySettings = RecoverySettings()
    worker: WorkerSettings = WorkerSettings()
    retention: RetentionSettings = RetentionSettings()
    auth: AuthSettings = AuthSettings()
    logging: LoggingSettings = LoggingSettings()
    client: ClientSettings = ClientSettings()
    tls: TlsSettings = TlsSettings()
    metrics: MetricsSettings = MetricsSettings()
    tracing: TracingSettings = TracingSettings()
    broker: BrokerSettings = BrokerSettings()
    scaling: ScalingSettings = ScalingSettings()
    faults: FaultSettings = FaultSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Arguments win over the environment; no .env or secret files.
        return init_settings, _EnvSource(settings_cls)


@dataclass(frozen=True)
class SettingField:
    group: str
    name: str
    info: FieldInfo

    @property
    def path(self) -> str:
        return f"{self.group}.{self.name}"

    @property
    def env(self) -> str:
        return env_of(self.info)

    @property
    def flag(self) -> str | None:
        extra = self.info.json_schema_extra
        return str(extra["flag"]) if isinstance(extra, dict) and "flag" in extra else None


def setting_fields() -> Iterator[SettingField]:
    """Every option, in declaration order."""
    for group, info in Settings.model_fields.items():
        model = info.annotation
        assert isinstance(model, type) and issubclass(model, _Group)
        for name, sub in model.model_fields.items():
            yield SettingField(group, name, sub)


def setting_field(path: str) -> SettingField:
    """The option at `group.name` (KeyError if there is none)."""
    for field in setting_fields():
        if field.path == path:
            return field
    raise KeyError(path)


#: Overrides by group: {"dispatcher": {"enabled": False}}.
Overrides = Mapping[str, Mapping[str, object] | None]


def load_settings(**overrides: Mapping[str, object] | None) -> Settings:
    """Settings from the environment plus explicit overrides by group
    (``load_settings(database={"url": url})``; None values are ignored).

    Raises ConfigError with a one-line message naming the setting and its variable.
    """
    clean = {
        group: {name: value for name, value in (values or {}).items() if value is not None}
        for group, values in overrides.items()
    }
    try:
        # Groups go in as dicts; pydantic-settings merges them over the environment.
        return Settings(**{g: v for g, v in clean.items() if v})  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(_one_line(exc)) from None


def _one_line(exc: ValidationError) -> str:
    first = exc.errors()[0]
    loc = [str(part) for part in first.get("loc", ())]
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    path = ".".join(loc[:2]) or "settings"
    if len(loc) < 2:  # a rule across a group's settings: the message names them
        return f"invalid settings: {message}"
    try:
        field = setting_field(path)
    except KeyError:
        where = repr(path)
    else:
        names = ", ".join(filter(None, (field.env, field.flag)))
        where = f"{path!r} ({names})"
    return f"invalid setting {where}: {message}"


def environment_for(overrides: Overrides) -> dict[str, str]:
    """The HODEI_* variables that carry these overrides to another process."""
    env: dict[str, str] = {}
    for group, values in overrides.items():
        for name, value in (values or {}).items():
            if value is None:
                continue
            text = str(value).lower() if isinstance(value, bool) else str(value)
            env[setting_field(f"{group}.{name}").env] = text
    return env
