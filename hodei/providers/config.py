"""providers.yaml: the providers the scaler may start workers on (HODEI_PROVIDERS_FILE).

    providers:
      - name: local-docker
        type: docker            # docker | kubernetes | process
        priority: 10            # highest first
        max_workers: 4
        tags: {pool: docker}    # the workers' labels; a job's selector must match them
        image: hodei/hodei:dev
        slots: 1
        idle_ttl: 60            # seconds idle before the worker is drained and removed
        resources: {requests: {cpu: "250m", memory: 256Mi}, limits: {cpu: "1", memory: 1Gi}}
        docker: {network_mode: host, env: {HODEI_LOG_FORMAT: json}}

A file that cannot be read or does not fit raises ConfigError with one line naming the
file, the entry and the field.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hodei.errors import ConfigError

ProviderType = Literal["docker", "kubernetes", "process"]

_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$")
_TAG_KEY = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_./-]{0,62}[A-Za-z0-9])?$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ResourceAmounts(_Model):
    cpu: str | None = None
    memory: str | None = None

    @field_validator("cpu", "memory", mode="before")
    @classmethod
    def _as_text(cls, value: object) -> object:
        # `cpu: 1` in YAML is an int; Kubernetes quantities are strings.
        return str(value) if isinstance(value, int | float) else value


class Resources(_Model):
    requests: ResourceAmounts = ResourceAmounts()
    limits: ResourceAmounts = ResourceAmounts()


class DockerOptions(_Model):
    #: host: the worker dials the server's address as the host sees it (the default
    #: here, where the server runs on the host); any other Docker network by name.
    network_mode: str = "host"
    env: dict[str, str] = Field(default_factory=dict)
    #: Docker Engine URL; empty: DOCKER_HOST or the local socket.
    base_url: str | None = None
    #: Remove the container when the worker process ends (docker run --rm).
    auto_remove: bool = True
    #: Extra container labels (the provider adds its own io.hodei.* labels).
    labels: dict[str, str] = Field(default_factory=dict)
    #: Host paths mounted read-only in the worker's container (host path -> container
    #: path): the CA and client certificate a TLS server needs, for instance.
    volumes: dict[str, str] = Field(default_factory=dict)


class KubernetesOptions(_Model):
    namespace: str = "default"
    service_account: str | None = None
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    node_selector: dict[str, str] = Field(default_factory=dict)
    env: dict[str, str] = Field(default_factory=dict)
    #: Extra pod labels and annotations (the provider adds its own io.hodei.* labels).
    pod_labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    #: Secret holding TLS material and the like, mounted read-only at /etc/hodei.
    secret_name: str | None = None
    #: How the provider reaches the API. Unset: the pod's service account when the
    #: server runs in the cluster, else the kubeconfig (`kubeconfig`, `context`, or the
    #: client's defaults). `api_url`: a plain URL without credentials, e.g. `kubectl
    #: proxy`'s http://127.0.0.1:8001 (the tests point it at their fake API server).
    api_url: str | None = None
    kubeconfig: str | None = None
    context: str | None = None
    #: Seconds each API call may take (connect and read).
    request_timeout: Annotated[float, Field(gt=0, le=300)] = 10.0


class ProcessOptions(_Model):
    """The `process` provider: workers as local child processes of the server
    (a laptop, the tests). `command` replaces `python -m hodei.worker`."""

    command: list[str] | None = None
    env: dict[str, str] = Field(default_factory=dict)


class ProviderConfig(_Model):
    name: str
    type: ProviderType
    priority: int = 0
    max_workers: Annotated[int, Field(ge=0, le=10_000)] = 1
    tags: dict[str, str] = Field(default_factory=dict)
    image: str = "hodei/hodei:dev"
    slots: Annotated[int, Field(ge=1, le=1024)] = 1
    idle_ttl: Annotated[float, Field(gt=0)] = 300.0
    resources: Resources = Resources()
    docker: DockerOptions = DockerOptions()
    kubernetes: KubernetesOptions = KubernetesOptions()
    process: ProcessOptions = ProcessOptions()

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("must be 1-40 of a-z, 0-9 and '-' (a DNS label), e.g. local-docker")
        return value

    @field_validator("tags", mode="before")
    @classmethod
    def _check_tags(cls, value: object) -> object:
        if isinstance(value, dict):
            for key, tag in value.items():
                if not isinstance(key, str) or not _TAG_KEY.match(key):
                    raise ValueError(f"tag key {key!r} is not a label key")
                if not isinstance(tag, str | int | float | bool):
                    raise ValueError(f"tag {key!r} must be a plain value")
            return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in value.items()}
        return value


class ProvidersFile(_Model):
    providers: list[ProviderConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> ProvidersFile:
        seen: set[str] = set()
        for entry in self.providers:
            if entry.name in seen:
                raise ValueError(f"two providers are named {entry.name!r}")
            seen.add(entry.name)
        return self

    def by_priority(self) -> list[ProviderConfig]:
        """Highest priority first; equal priorities in file order."""
        return sorted(self.providers, key=lambda p: -p.priority)


def parse_providers(data: Any, source: str = "providers.yaml") -> ProvidersFile:
    """The providers in already-loaded YAML data; ConfigError (one line) when it does not fit."""
    if data is None:
        data = {}
    if isinstance(data, list):
        data = {"providers": data}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping with a 'providers' list")
    try:
        return ProvidersFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_where(exc, data)}") from None


def load_providers(path: Path) -> ProvidersFile:
    """Read and check providers.yaml; ConfigError (one line) for any problem."""
    import yaml  # a core dependency, imported here: only the server with a scaler reads YAML

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read providers file {str(path)!r}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise ConfigError(f"{path}{line}: {problem}") from None
    return parse_providers(data, str(path))


def _where(exc: ValidationError, data: dict[str, Any]) -> str:
    first = exc.errors()[0]
    loc = list(first.get("loc", ()))
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    if len(loc) >= 2 and loc[0] == "providers" and isinstance(loc[1], int):
        entries = data.get("providers") or []
        entry = entries[loc[1]] if loc[1] < len(entries) else None
        name = entry.get("name") if isinstance(entry, dict) else None
        label = f"provider {name!r}" if isinstance(name, str) else f"provider #{loc[1] + 1}"
        field = ".".join(str(p) for p in loc[2:])
        return f"{label}: {field}: {message}" if field else f"{label}: {message}"
    field = ".".join(str(p) for p in loc)
    return f"{field}: {message}" if field else message
