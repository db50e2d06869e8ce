"""The settings group of workers on demand (`scaling`): where the providers file is and
how the server's scaler loop behaves. Declared like every other group
(hodei.setting_groups); import it from hodei.settings."""

from __future__ import annotations

from pathlib import Path

from pydantic import field_validator

from hodei.setting_groups import _Group, setting


class ScalingSettings(_Group):
    """The scaler (hodei.server.scaler) runs only when `providers_file` is set."""

    providers_file: Path | None = setting(
        None,
        "HODEI_PROVIDERS_FILE",
        "providers.yaml of the workers provisioned on demand (unset: no scaler)",
        flag="--providers-file",
    )
    interval: float = setting(
        2.0,
        "HODEI_SCALER_INTERVAL",
        "seconds between two scaling decisions (a queued job also wakes the scaler)",
        gt=0,
        le=3600,
    )
    token_ttl: float = setting(
        300.0,
        "HODEI_PROVISION_TOKEN_TTL",
        "a provisioned worker must register within this long with its single-use token, s",
        gt=0,
    )
    register_timeout: float = setting(
        120.0,
        "HODEI_PROVISION_REGISTER_TIMEOUT",
        "a provisioned worker not registered after this long is removed, s",
        gt=0,
    )
    failure_threshold: int = setting(
        3,
        "HODEI_PROVIDER_FAILURE_THRESHOLD",
        "consecutive provisioning failures that open a provider's circuit",
        ge=1,
    )
    cooldown: float = setting(
        60.0,
        "HODEI_PROVIDER_COOLDOWN",
        "how long an open circuit keeps a failing provider out, s",
        ge=0,
    )
    server_address: str | None = setting(
        None,
        "HODEI_PROVISION_SERVER_ADDRESS",
        "HOST:PORT provisioned workers dial (default: the port this server listens on)",
    )

    @field_validator("providers_file", "server_address", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value
