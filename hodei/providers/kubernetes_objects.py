"""The Kubernetes objects of one provisioned worker: its Pod and the Secret that holds
its single-use token, built as the official client's models (V1Pod, V1Secret).

No API call here: the provider (kubernetes_provider) sends what these functions build.
The client library is imported inside the functions, so `pip install hodei` imports
this module without the [kubernetes] extra.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from hodei.providers.base import ProvisionedState, ProvisionRequest
from hodei.providers.config import ProviderConfig

if TYPE_CHECKING:
    from kubernetes.client import V1OwnerReference, V1Pod, V1Secret

#: The labels on every pod and secret the provider makes; `list()` selects on the
#: first two, so that a pod is found again after the server restarts.
LABEL_APP = "app.kubernetes.io/name"
APP_WORKER = "hodei-worker"
LABEL_PROVIDER = "hodei.io/provider"
LABEL_WORKER_NAME = "hodei.io/worker-name"
LABEL_JOB = "hodei.io/job"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
#: A label value is limited to 63 characters of [A-Za-z0-9._-]: the exact worker name
#: (which may be longer or use other characters) goes in this annotation.
ANNOTATION_WORKER_NAME = "hodei.io/worker-name"

#: The key of the token in the worker's Secret; the container reads it as HODEI_TOKEN.
TOKEN_KEY = "token"
CONTAINER_NAME = "worker"
#: The image's user (Dockerfile: useradd --uid 10001 hodei).
IMAGE_UID = 10001
#: Where the optional `kubernetes.secret_name` (TLS material) is mounted.
EXTRA_SECRET_MOUNT = "/etc/hodei"
WORKER_METRICS_PORT = 9465
#: On SIGTERM a worker drains for HODEI_WORKER_SHUTDOWN_GRACE (30 s by default):
#: Kubernetes' own default (30 s) would kill it as the drain ends.
TERMINATION_GRACE_SECONDS = 45

_NOT_DNS = re.compile(r"[^a-z0-9-]+")
_NOT_LABEL = re.compile(r"[^A-Za-z0-9._-]+")


def pod_name(worker_name: str) -> str:
    """A DNS-1123 label for the worker's pod: its name lower-cased, other characters as
    '-', at most 63 characters, prefixed `hodei-` when it does not start with a letter."""
    name = _NOT_DNS.sub("-", worker_name.lower()).strip("-")
    if not name or not name[0].isalpha():
        name = f"hodei-{name}".rstrip("-")
    return name[:63].rstrip("-")


def secret_name(pod: str) -> str:
    return f"{pod[:57].rstrip('-')}-token"


def label_value(text: str) -> str:
    """`text` as a label value: [A-Za-z0-9._-], at most 63, alphanumeric at both ends."""
    value = _NOT_LABEL.sub("-", text)[:63]
    return value.strip("-._")


def selector(provider: str) -> str:
    """The label selector of the pods (and secrets) of provider `provider`."""
    return f"{LABEL_APP}={APP_WORKER},{LABEL_PROVIDER}={label_value(provider)}"


def labels_for(config: ProviderConfig, request: ProvisionRequest) -> dict[str, str]:
    labels = dict(config.kubernetes.pod_labels)
    labels.update(
        {
            LABEL_APP: APP_WORKER,
            LABEL_MANAGED_BY: "hodei",
            LABEL_PROVIDER: label_value(config.name),
            LABEL_WORKER_NAME: label_value(request.worker_name),
        }
    )
    if request.job_id is not None:
        labels[LABEL_JOB] = str(request.job_id)
    return labels


def build_secret(config: ProviderConfig, request: ProvisionRequest) -> V1Secret:
    """The worker's token as an immutable Opaque Secret (`stringData`: the API server
    encodes it). Its owner is set to the pod once the pod exists (owner_patch), so
    that deleting the pod deletes it even if the server never gets to."""
    from kubernetes import client

    pod = pod_name(request.worker_name)
    return client.V1Secret(
        api_version="v1",
        kind="Secret",
        metadata=client.V1ObjectMeta(
            name=secret_name(pod),
            namespace=config.kubernetes.namespace,
            labels=labels_for(config, request),
            annotations={ANNOTATION_WORKER_NAME: request.worker_name},
        ),
        type="Opaque",
        immutable=True,
        string_data={TOKEN_KEY: request.token},
    )


def owner_patch(pod: str, uid: str) -> dict[str, Any]:
    """The patch that makes the pod the owner of its token Secret (the garbage
    collector then deletes the Secret with the pod)."""
    reference: V1OwnerReference = _owner_reference(pod, uid)
    from kubernetes import client

    body = client.ApiClient().sanitize_for_serialization(reference)
    return {"metadata": {"ownerReferences": [body]}}


def _owner_reference(pod: str, uid: str) -> V1OwnerReference:
    from kubernetes import client

    return client.V1OwnerReference(api_version="v1", kind="Pod", name=pod, uid=uid)


def worker_env(config: ProviderConfig, request: ProvisionRequest) -> dict[str, str]:
    """The worker's plain environment: no secret in it (the token comes from the Secret)."""
    env = {**config.kubernetes.env, **request.env}
    env.update(
        {
            "HODEI_SERVER_ADDRESS": request.server_address,
            "HODEI_WORKER_NAME": request.worker_name,
            "HODEI_SLOTS": str(request.slots),
            # The provider's tags: a job's selector matches the worker on them.
            "HODEI_WORKER_LABELS": ",".join(f"{k}={v}" for k, v in request.labels.items()),
        }
    )
    env.pop("HODEI_TOKEN", None)  # only ever from the Secret
    return env


def build_pod(config: ProviderConfig, request: ProvisionRequest) -> V1Pod:
    """One worker as a Pod: `hodei worker` from the configured image, restartPolicy
    Never (a finished worker is not restarted: the scaler decides), the token from the
    Secret by reference, resources from the provider entry, non-root, no API token."""
    from kubernetes import client

    options = config.kubernetes
    pod = pod_name(request.worker_name)
    env = [client.V1EnvVar(name=k, value=v) for k, v in sorted(worker_env(config, request).items())]
    env.append(
        client.V1EnvVar(
            name="HODEI_TOKEN",
            value_from=client.V1EnvVarSource(
                secret_key_ref=client.V1SecretKeySelector(name=secret_name(pod), key=TOKEN_KEY)
            ),
        )
    )
    mounts, volumes = [], []
    if options.secret_name:
        volumes.append(
            client.V1Volume(
                name="hodei-extra",
                secret=client.V1SecretVolumeSource(secret_name=options.secret_name),
            )
        )
        mounts.append(
            client.V1VolumeMount(name="hodei-extra", mount_path=EXTRA_SECRET_MOUNT, read_only=True)
        )
    container = client.V1Container(
        name=CONTAINER_NAME,
        image=config.image,
        image_pull_policy=options.image_pull_policy,
        args=["worker"],
        env=env,
        ports=[client.V1ContainerPort(name="metrics", container_port=WORKER_METRICS_PORT)],
        resources=_resources(config),
        volume_mounts=mounts or None,
        security_context=client.V1SecurityContext(
            allow_privilege_escalation=False,
            capabilities=client.V1Capabilities(drop=["ALL"]),
        ),
    )
    return client.V1Pod(
        api_version="v1",
        kind="Pod",
        metadata=client.V1ObjectMeta(
            name=pod,
            namespace=options.namespace,
            labels=labels_for(config, request),
            annotations={**options.annotations, ANNOTATION_WORKER_NAME: request.worker_name},
        ),
        spec=client.V1PodSpec(
            restart_policy="Never",
            termination_grace_period_seconds=TERMINATION_GRACE_SECONDS,
            service_account_name=options.service_account,
            # A worker never calls the Kubernetes API: no API token in its filesystem.
            automount_service_account_token=False,
            node_selector=options.node_selector or None,
            containers=[container],
            volumes=volumes or None,
            security_context=client.V1PodSecurityContext(
                run_as_non_root=True,
                run_as_user=IMAGE_UID,
                seccomp_profile=client.V1SeccompProfile(type="RuntimeDefault"),
            ),
        ),
    )


def _resources(config: ProviderConfig) -> Any:
    from kubernetes import client

    def amounts(cpu: str | None, memory: str | None) -> dict[str, str] | None:
        found = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
        return found or None

    requests = amounts(config.resources.requests.cpu, config.resources.requests.memory)
    limits = amounts(config.resources.limits.cpu, config.resources.limits.memory)
    if requests is None and limits is None:
        return None
    return client.V1ResourceRequirements(requests=requests, limits=limits)


#: Pod phase -> what the scaler sees; a pod being deleted counts as EXITED.
_PHASES = {
    "Pending": ProvisionedState.STARTING,
    "Running": ProvisionedState.RUNNING,
    "Succeeded": ProvisionedState.EXITED,
    "Failed": ProvisionedState.EXITED,
}


def pod_state(phase: str | None, deleting: bool = False) -> ProvisionedState:
    if deleting:
        return ProvisionedState.EXITED
    return _PHASES.get(phase or "", ProvisionedState.UNKNOWN)
