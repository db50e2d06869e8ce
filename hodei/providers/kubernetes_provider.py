"""The Kubernetes provider (`type: kubernetes` in providers.yaml): a Pod per worker, in
the entry's namespace, on the official `kubernetes` client (the [kubernetes] extra).

What one provision sends, in this order:

1. POST a Secret holding the worker's single-use token (the pod reads it by reference,
   so the token is never in the pod spec);
2. POST the Pod (kubernetes_objects.build_pod);
3. PATCH (strategic merge) the Secret's ownerReferences to the new pod, so that Kubernetes' garbage
   collector removes the Secret with the pod even if this server never gets to.

A failure at 2 deletes the Secret again. `terminate` deletes the pod and the secret (a
404 is fine: already gone); `list` and `capacity` select the pods by label; `health`
lists one pod. The client blocks, so every call runs in a thread (asyncio.to_thread);
API errors become ProvisioningError or an unhealthy ProviderHealth with one line
naming the cause (forbidden, quota, namespace missing, unreachable...).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from hodei.providers import kubernetes_objects as objects
from hodei.providers.base import (
    ProviderHealth,
    ProvisionedState,
    ProvisionedWorker,
    ProvisioningError,
    ProvisionRequest,
)
from hodei.providers.config import ProviderConfig

if TYPE_CHECKING:
    from kubernetes.client import CoreV1Api, V1Pod

logger = logging.getLogger(__name__)

T = TypeVar("T")
#: Seconds the health call may take: it is made every scaler round.
_HEALTH_CALL_TIMEOUT = 4.0
#: The class's `list` method shadows the builtin inside its body.
Workers = list[ProvisionedWorker]


class KubernetesProvider:
    """Workers as pods; one instance per providers.yaml entry."""

    def __init__(self, config: ProviderConfig) -> None:
        self.name = config.name
        self._config = config
        self._namespace = config.kubernetes.namespace
        self._api: CoreV1Api | None = None
        # to_thread may run two calls at once: the client is built once.
        self._lock = threading.Lock()

    # -- the interface -------------------------------------------------------------

    async def provision(self, request: ProvisionRequest) -> ProvisionedWorker:
        return await asyncio.to_thread(self._provision, request)

    async def terminate(self, handle: str) -> None:
        await asyncio.to_thread(self._terminate, handle)

    async def list(self) -> list[ProvisionedWorker]:
        return await asyncio.to_thread(self._list)

    async def health(self) -> ProviderHealth:
        try:
            await asyncio.to_thread(self._probe)
        except ProvisioningError as exc:
            return ProviderHealth(ok=False, detail=str(exc))
        return ProviderHealth(
            ok=True,
            detail=f"kubernetes API at {self._host()} reachable, namespace {self._namespace!r}",
        )

    async def capacity(self) -> int:
        live = [w for w in await self.list() if w.state is not ProvisionedState.EXITED]
        return max(0, self._config.max_workers - len(live))

    async def close(self) -> None:
        api, self._api = self._api, None
        if api is not None:
            await asyncio.to_thread(api.api_client.close)

    # -- the calls, in a thread --------------------------------------------------------

    def _provision(self, request: ProvisionRequest) -> ProvisionedWorker:
        api = self._core()
        secret = objects.build_secret(self._config, request)
        pod = objects.build_pod(self._config, request)
        pod_name = str(pod.metadata.name)  # type: ignore[union-attr]
        secret_name = str(secret.metadata.name)  # type: ignore[union-attr]
        self._call(
            "create the token secret",
            lambda: api.create_namespaced_secret(self._namespace, secret, **self._timeout()),
        )
        try:
            created = self._call(
                "create the worker pod",
                lambda: api.create_namespaced_pod(self._namespace, pod, **self._timeout()),
            )
        except ProvisioningError:
            self._delete_quietly(secret_name)
            raise
        uid = getattr(created.metadata, "uid", None)
        if uid:
            try:
                self._call(
                    "give the token secret to its pod",
                    lambda: api.patch_namespaced_secret(
                        secret_name,
                        self._namespace,
                        # A mapping: the client sends it as a strategic merge patch.
                        objects.owner_patch(pod_name, uid),
                        **self._timeout(),
                    ),
                )
            except ProvisioningError as exc:
                # The pod runs; the secret is deleted by terminate() instead of by
                # the garbage collector.
                logger.warning(
                    "token secret left without an owner",
                    extra={"provider": self.name, "secret": secret_name, "error": str(exc)},
                )
        logger.info(
            "worker pod created",
            extra={"provider": self.name, "pod": pod_name, "worker_name": request.worker_name},
        )
        return _worker(self.name, created)

    def _terminate(self, handle: str) -> None:
        api = self._core()
        self._call(
            "delete the worker pod",
            lambda: api.delete_namespaced_pod(
                handle, self._namespace, propagation_policy="Background", **self._timeout()
            ),
            missing_ok=True,
        )
        self._delete_quietly(objects.secret_name(handle))

    def _list(self) -> Workers:
        api = self._core()
        pods = self._call(
            "list the worker pods",
            lambda: api.list_namespaced_pod(
                self._namespace, label_selector=objects.selector(self.name), **self._timeout()
            ),
        )
        return [_worker(self.name, pod) for pod in pods.items or []]

    def _probe(self) -> None:
        """The cheapest call that proves the API answers and the Role lets this server
        list pods in the namespace: one pod at most."""
        api = self._core()
        self._call(
            "reach the API",
            lambda: api.list_namespaced_pod(
                self._namespace,
                label_selector=objects.selector(self.name),
                limit=1,
                # Two tries inside the scaler's 10 s wait for a health answer.
                _request_timeout=min(self._config.kubernetes.request_timeout, _HEALTH_CALL_TIMEOUT),
            ),
        )

    def _delete_quietly(self, name: str) -> None:
        """Delete a token secret; a failure is logged, not raised: the secret holds a
        single-use token that expires on its own, and the pod owns it when it exists."""
        api = self._core()
        try:
            self._call(
                "delete the token secret",
                lambda: api.delete_namespaced_secret(name, self._namespace, **self._timeout()),
                missing_ok=True,
            )
        except ProvisioningError as exc:
            logger.warning(
                "token secret not deleted",
                extra={"provider": self.name, "secret": name, "error": str(exc)},
            )

    def _timeout(self) -> dict[str, Any]:
        return {"_request_timeout": self._config.kubernetes.request_timeout}

    def _call(self, doing: str, call: Callable[[], T], missing_ok: bool = False) -> T:
        """`call()`, its failures as one-line ProvisioningErrors; None for a 404 when
        `missing_ok` (deleting what is already gone)."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return call()
        except ApiException as exc:
            if missing_ok and exc.status == 404:
                return None  # type: ignore[return-value]
            raise ProvisioningError(self._api_error(doing, exc)) from None
        except HTTPError as exc:
            raise ProvisioningError(
                f"kubernetes provider {self.name!r}: cannot {doing}: API unreachable at "
                f"{self._host()}: {_first_line(exc)}"
            ) from None

    def _api_error(self, doing: str, exc: Any) -> str:
        status = int(exc.status or 0)
        message = _api_message(exc)
        where = f"namespace {self._namespace!r}"
        prefix = f"kubernetes provider {self.name!r}: cannot {doing}"
        if status == 401:
            return f"{prefix}: the API refused the credentials (401): {message}"
        if status == 403 and "quota" in message.lower():
            return f"{prefix}: quota exceeded in {where} (403): {message}"
        if status == 403:
            return (
                f"{prefix}: forbidden in {where} (403; does the server's service account "
                f"have the Role in deploy/kubernetes/base/rbac.yaml?): {message}"
            )
        if status == 404:
            return f"{prefix}: not found (404; does {where} exist?): {message}"
        if status == 409:
            return f"{prefix}: already exists (409): {message}"
        if status == 422:
            return f"{prefix}: the API rejected the object (422): {message}"
        return f"{prefix}: API error {status or '?'} {exc.reason or ''}: {message}".rstrip(": ")

    def _host(self) -> str:
        api = self._api
        return str(api.api_client.configuration.host) if api is not None else "?"

    def _core(self) -> CoreV1Api:
        with self._lock:
            if self._api is None:
                self._api = self._connect()
            return self._api

    def _connect(self) -> CoreV1Api:
        from kubernetes import client
        from kubernetes import config as kube_config

        options = self._config.kubernetes
        configuration = client.Configuration()
        if options.api_url:
            configuration.host = options.api_url.rstrip("/")
        else:
            try:
                if options.kubeconfig or options.context:
                    raise kube_config.ConfigException("a kubeconfig is named")
                kube_config.load_incluster_config(client_configuration=configuration)
            except kube_config.ConfigException:
                try:
                    kube_config.load_kube_config(
                        config_file=options.kubeconfig,
                        context=options.context,
                        client_configuration=configuration,
                    )
                except (kube_config.ConfigException, OSError) as exc:
                    raise ProvisioningError(
                        f"kubernetes provider {self.name!r}: no API to talk to: not in a "
                        f"cluster, and the kubeconfig cannot be used: {_first_line(exc)}"
                    ) from None
        # One retry of a dropped connection; the scaler's next cycle is the real retry.
        configuration.retries = 1
        return client.CoreV1Api(client.ApiClient(configuration))


def _worker(provider: str, pod: V1Pod) -> ProvisionedWorker:
    meta = pod.metadata
    labels = dict((meta.labels if meta else None) or {})
    annotations = (meta.annotations if meta else None) or {}
    status = pod.status
    return ProvisionedWorker(
        provider=provider,
        handle=str(meta.name if meta else ""),
        worker_name=annotations.get(
            objects.ANNOTATION_WORKER_NAME, labels.get(objects.LABEL_WORKER_NAME, "")
        ),
        state=objects.pod_state(
            status.phase if status else None,
            deleting=bool(meta and meta.deletion_timestamp),
        ),
        created_at=meta.creation_timestamp if meta else None,
        labels=labels,
    )


def _api_message(exc: Any) -> str:
    """The `message` of the API's Status body, else its reason; one line."""
    body = getattr(exc, "body", None)
    if body:
        try:
            message = json.loads(body).get("message")
        except (ValueError, AttributeError):
            message = None
        if message:
            return _first_line(message)
    return _first_line(exc.reason or "no detail")


def _first_line(value: object) -> str:
    text = str(value).strip()
    return text.splitlines()[0][:300] if text else type(value).__name__
