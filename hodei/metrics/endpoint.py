"""The `/metrics` HTTP endpoint of one process: prometheus_client's WSGI server on a
daemon thread, bound to `metrics.host` (default: the gRPC host) and the given port.

Port 0 binds any free port (tests and the harness start many processes at once); the
bound port is then `MetricsEndpoint.port`. A port in use is one clear line, the way the
gRPC port is refused (hodei.server.app)."""

from __future__ import annotations

import errno
import logging
import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server

from hodei.errors import Unavailable
from hodei.settings import Settings

logger = logging.getLogger(__name__)


def metrics_host(settings: Settings) -> str:
    """`HODEI_METRICS_HOST`, else the server's gRPC host (`HODEI_HOST`)."""
    return settings.metrics.host or settings.server.host


#: The setting (and flag) that moves each component's /metrics port.
_PORT_SETTING = {
    "server": "set HODEI_METRICS_PORT / --metrics-port",
    "worker": "set HODEI_WORKER_METRICS_PORT / --worker-metrics-port",
}


class MetricsEndpoint:
    """Serves one registry; `start()` binds (or raises Unavailable), `stop()` closes."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int, component: str) -> None:
        self.registry = registry
        self.host = host
        self.requested_port = port
        self.component = component
        #: The bound port (the requested one, or the one picked for port 0); 0 until started.
        self.port = 0
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = self.host.strip("[]")
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.port}/metrics"

    def start(self) -> None:
        address = f"{self.host}:{self.requested_port}"
        try:
            self._server, self._thread = start_http_server(
                self.requested_port, addr=self.host.strip("[]"), registry=self.registry
            )
        except OSError as exc:
            reason = (
                "the port is in use" if exc.errno == errno.EADDRINUSE else exc.strerror or str(exc)
            )
            setting = _PORT_SETTING.get(self.component, _PORT_SETTING["server"])
            raise Unavailable(
                f"cannot serve metrics on {address}: {reason} "
                f"({setting}, 0 for any free port, or HODEI_METRICS=false)"
            ) from None
        self.port = int(self._server.server_address[1])
        wildcard = self.host.strip("[]") in ("0.0.0.0", "::", "")
        logger.info(
            "%s metrics on %s%s",
            self.component,
            self.url,
            f" (listening on every interface, {self.host or '0.0.0.0'}:{self.port})"
            if wildcard
            else "",
            extra={"metrics_port": self.port, "component": self.component},
        )

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None
