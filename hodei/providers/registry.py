"""Provider types: `type` in providers.yaml -> the factory that builds the provider.

The built-in types register lazily (their module, and its client library, is imported
only when a providers file names them); another package registers its own with
`register("name", factory)`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from hodei.errors import ConfigError
from hodei.providers.base import Provider
from hodei.providers.config import ProviderConfig

ProviderFactory = Callable[[ProviderConfig], Provider]

_FACTORIES: dict[str, ProviderFactory] = {}
#: type -> "module:function", imported on first use.
_BUILTIN: dict[str, str] = {
    "process": "hodei.providers.process:ProcessProvider",
    "docker": "hodei.providers.docker_provider:DockerProvider",
    "kubernetes": "hodei.providers.kubernetes_provider:KubernetesProvider",
}


def register(provider_type: str, factory: ProviderFactory) -> None:
    """Make `type: provider_type` in providers.yaml build its providers with `factory`."""
    _FACTORIES[provider_type] = factory


def factory_for(provider_type: str) -> ProviderFactory:
    if provider_type in _FACTORIES:
        return _FACTORIES[provider_type]
    target = _BUILTIN.get(provider_type)
    if target is None:
        raise ConfigError(f"unknown provider type {provider_type!r}")
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        extra = "docker" if provider_type == "docker" else "kubernetes"
        raise ConfigError(
            f"provider type {provider_type!r} needs {exc.name or module_name!r}: "
            f"pip install 'hodei[{extra}]'"
        ) from None
    factory: ProviderFactory = getattr(module, attr)
    _FACTORIES[provider_type] = factory
    return factory


def build_provider(config: ProviderConfig) -> Provider:
    """The provider of one providers.yaml entry; ConfigError (one line) when the entry
    does not fit its type (a resource quantity Docker cannot take...)."""
    factory = factory_for(config.type)
    try:
        return factory(config)
    except ValueError as exc:
        raise ConfigError(f"provider {config.name!r}: {exc}") from None
