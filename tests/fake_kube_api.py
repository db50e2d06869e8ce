"""A small real Kubernetes API server for the provider's tests: plain HTTP on a free
port (http.server in a thread), the few core/v1 endpoints the provider calls, every
request recorded, failures injected on demand.

    POST   /api/v1/namespaces/{ns}/{pods|secrets}          create (409 if it exists)
    GET    /api/v1/namespaces/{ns}/{pods|secrets}          list (labelSelector k=v,..., limit)
    PATCH  /api/v1/namespaces/{ns}/{pods|secrets}/{name}   merge or strategic merge patch (metadata)
    DELETE /api/v1/namespaces/{ns}/{pods|secrets}/{name}   delete (404 if missing)

Like the real server it refuses, with a 422 Status, a body that does not fit the
object's schema (checked with tests.kube_models), and a JSON patch that is not a list;
deleting a pod deletes the secrets it owns (the garbage collector). Anything else is a
404 with the path, so a call the provider should not make shows up as a failure.
"""

from __future__ import annotations

import base64
import copy
import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.kube_models import validate

#: resource (the URL's plural) -> the model its bodies must fit.
RESOURCES = {"pods": "V1Pod", "secrets": "V1Secret"}
#: HTTP method -> the RBAC verb it needs (a GET without a name is `list`).
VERBS = {"POST": "create", "PATCH": "patch", "DELETE": "delete", "PUT": "update"}


@dataclass(frozen=True)
class Call:
    method: str
    namespace: str
    resource: str
    name: str | None
    query: dict[str, str]
    content_type: str
    body: Any
    #: The Authorization header ("" when none): the credentials the client sent.
    authorization: str = ""

    @property
    def verb(self) -> str:
        if self.method == "GET":
            return "get" if self.name else "list"
        return VERBS[self.method]


@dataclass
class Fault:
    method: str
    resource: str
    status: int
    message: str
    times: int = 1


@dataclass
class FakeKubeApi:
    """Start with `start()`, point the provider at `url`, stop with `stop()`."""

    objects: dict[tuple[str, str], dict[str, dict[str, Any]]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    #: Pod phase given to a created pod (what a kubelet would report later).
    phase: str = "Pending"
    #: Called (under the lock) with a created pod and the namespace's secrets, and with
    #: a deleted pod: a fake kubelet runs the pods (tests/integration/providers/kubelet.py).
    on_pod_created: Callable[[dict[str, Any], dict[str, dict[str, Any]]], None] | None = None
    on_pod_deleted: Callable[[dict[str, Any]], None] | None = None
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self._server is not None, "not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeKubeApi:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                api._handle(self)

            do_POST = do_PATCH = do_DELETE = do_PUT = do_GET

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the calls are recorded; stderr stays quiet

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-kube-api",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (the port then refuses connections); stopping twice is fine."""
        if self._server is not None and self._thread is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._thread = None

    def fail(self, method: str, resource: str, status: int, message: str, times: int = 1) -> None:
        """The next `times` requests `method` on `resource` get a Status `status`."""
        self.faults.append(Fault(method, resource, status, message, times))

    def stored(self, resource: str, namespace: str) -> dict[str, dict[str, Any]]:
        with self._lock:
            return dict(self.objects.get((namespace, resource), {}))

    def sequence(self) -> list[tuple[str, str, str | None]]:
        """(verb, resource, name) of every call, in order."""
        return [(c.verb, c.resource, c.name) for c in self.calls]

    # -- the server side ------------------------------------------------------------

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        url = urlsplit(request.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        parts = url.path.strip("/").split("/")
        # api v1 namespaces {ns} {resource} [name]
        if len(parts) not in (5, 6) or parts[:3] != ["api", "v1", "namespaces"]:
            return _reply(request, *_status(404, f"the fake serves no {url.path}"))
        namespace, resource = parts[3], parts[4]
        name = parts[5] if len(parts) == 6 else None
        content_type = request.headers.get("Content-Type", "")
        call = Call(
            request.command,
            namespace,
            resource,
            name,
            query,
            content_type,
            body,
            request.headers.get("Authorization", ""),
        )
        with self._lock:
            self.calls.append(call)
            fault = self._fault_for(call)
            if fault is not None:
                return _reply(request, *_status(fault.status, fault.message))
            if resource not in RESOURCES:
                return _reply(request, *_status(404, f"the fake serves no {resource}"))
            _reply(request, *self._apply(call))

    def _fault_for(self, call: Call) -> Fault | None:
        for fault in self.faults:
            if fault.times > 0 and (fault.method, fault.resource) == (call.method, call.resource):
                fault.times -= 1
                return fault
        return None

    def _apply(self, call: Call) -> tuple[int, dict[str, Any]]:
        store = self.objects.setdefault((call.namespace, call.resource), {})
        kind = RESOURCES[call.resource].removeprefix("V1")
        if call.method == "POST" and call.name is None:
            return self._create(call, store, kind)
        if call.method == "GET" and call.name is None:
            items = [o for o in store.values() if _matches(o, call.query.get("labelSelector"))]
            if "limit" in call.query:
                items = items[: int(call.query["limit"])]
            return 200, {"apiVersion": "v1", "kind": f"{kind}List", "metadata": {}, "items": items}
        if call.name is not None and call.name not in store:
            return _status(404, f'{call.resource} "{call.name}" not found')
        if call.method == "DELETE" and call.name is not None:
            gone = store.pop(call.name)
            if call.resource == "pods":
                # The API answers a pod's deletion with the pod, marked as being deleted.
                self._collect_garbage(call.namespace, gone["metadata"]["uid"])
                if self.on_pod_deleted is not None:
                    self.on_pod_deleted(gone)
                gone["metadata"]["deletionTimestamp"] = _now()
                return 200, gone
            return _status(200, "deleted")
        if call.method == "PATCH" and call.name is not None:
            return self._patch(call, store)
        return _status(405, f"the fake does not {call.method} {call.resource}")

    def _create(
        self, call: Call, store: dict[str, dict[str, Any]], kind: str
    ) -> tuple[int, dict[str, Any]]:
        obj = copy.deepcopy(call.body)  # the recorded call keeps what was sent
        try:
            validate(obj, RESOURCES[call.resource])
        except AssertionError as exc:
            return _status(422, f"{kind} is invalid: {exc}")
        meta = obj["metadata"]
        if meta.get("namespace", call.namespace) != call.namespace:
            return _status(400, "the namespace of the object does not match the URL")
        if meta["name"] in store:
            return _status(409, f'{call.resource} "{meta["name"]}" already exists')
        meta.update(
            namespace=call.namespace,
            uid=str(uuid.uuid4()),
            creationTimestamp=_now(),
            resourceVersion="1",
        )
        if call.resource == "pods":
            obj["status"] = {"phase": self.phase}
        if call.resource == "secrets" and "stringData" in obj:
            # As the API stores it: base64 under `data`.
            for key, value in obj.pop("stringData").items():
                obj.setdefault("data", {})[key] = base64.b64encode(value.encode()).decode()
        store[meta["name"]] = obj
        if call.resource == "pods" and self.on_pod_created is not None:
            self.on_pod_created(obj, self.objects.get((call.namespace, "secrets"), {}))
        return 201, obj

    def _patch(self, call: Call, store: dict[str, dict[str, Any]]) -> tuple[int, dict[str, Any]]:
        if "json-patch" in call.content_type and not isinstance(call.body, list):
            return _status(
                400, "json: cannot unmarshal object into Go value of type jsonpatch.Patch"
            )
        if "merge-patch" not in call.content_type or not isinstance(call.body, dict):
            return _status(415, f"the fake applies merge patches only, not {call.content_type}")
        obj = store[call.name or ""]
        for key, value in (call.body.get("metadata") or {}).items():
            if key == "ownerReferences" and "strategic" in call.content_type:
                # strategic merge: the list merges on each reference's uid
                kept = [
                    o
                    for o in obj["metadata"].get(key, [])
                    if o["uid"] not in {v["uid"] for v in value}
                ]
                value = kept + value
            obj["metadata"][key] = value
        return 200, obj

    def _collect_garbage(self, namespace: str, owner_uid: str) -> None:
        secrets = self.objects.get((namespace, "secrets"), {})
        for name, secret in list(secrets.items()):
            owners = secret["metadata"].get("ownerReferences") or []
            if any(o.get("uid") == owner_uid for o in owners):
                del secrets[name]


def _matches(obj: dict[str, Any], selector: str | None) -> bool:
    """Equality-based label selectors (k=v,k2=v2), the only kind the provider uses; any
    other form fails the test loudly."""
    if not selector:
        return True
    labels = obj["metadata"].get("labels") or {}
    for term in selector.split(","):
        key, sep, value = term.partition("=")
        assert sep and "!" not in key and not value.startswith("="), f"selector {selector!r}"
        if labels.get(key) != value:
            return False
    return True


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _status(code: int, message: str) -> tuple[int, dict[str, Any]]:
    reasons = {403: "Forbidden", 404: "NotFound", 409: "AlreadyExists", 422: "Invalid"}
    return code, {
        "apiVersion": "v1",
        "kind": "Status",
        "metadata": {},
        "status": "Success" if code < 400 else "Failure",
        "message": message,
        "reason": reasons.get(code, "InternalError" if code >= 500 else ""),
        "code": code,
    }


def _reply(request: BaseHTTPRequestHandler, code: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    request.send_response(code)
    request.send_header("Content-Type", "application/json")
    request.send_header("Content-Length", str(len(data)))
    request.end_headers()
    request.wfile.write(data)
