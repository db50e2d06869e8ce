"""The real Prometheus tools for the tests and the harness: finding `promtool` and
`prometheus`, and running a throwaway Prometheus server that scrapes a deployment.

The binaries come from PATH, else from `.tools/prometheus/usr/bin/` where
`scripts/install_prometheus.sh` unpacks Debian's package. A test that needs them is
skipped with the reason when they are absent, except under HODEI_REQUIRE_PROMETHEUS=1
(`.ci/run` sets it), where their absence fails the test: CI must not pass by skipping.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from harness.waits import Said, wait_for

#: Where scripts/install_prometheus.sh puts the binaries (next to this checkout).
TOOLS_BIN = Path(__file__).resolve().parents[1] / ".tools" / "prometheus" / "usr" / "bin"
#: Set to 1 (as .ci/run does) to fail, not skip, what needs a missing tool.
REQUIRE_ENV = "HODEI_REQUIRE_PROMETHEUS"
#: The alert rules shipped with Hodei, loaded by every Prometheus the harness starts.
ALERT_RULES = Path(__file__).resolve().parents[1] / "deploy" / "prometheus" / "hodei-alerts.yml"
#: Scrape job names of the metric contract: dashboards and alerts select on them.
SERVER_JOB = "hodei-server"
WORKER_JOB = "hodei-worker"

HTTP_TIMEOUT_S = 5.0


class PrometheusError(RuntimeError):
    """Prometheus could not be started or did not answer; the message says why."""


def find_tool(name: str) -> Path | None:
    """`name` ("promtool" or "prometheus") on PATH, else under .tools, else None."""
    found = shutil.which(name)
    if found:
        return Path(found)
    local = TOOLS_BIN / name
    return local if local.is_file() and os.access(local, os.X_OK) else None


def tool_required() -> bool:
    return os.environ.get(REQUIRE_ENV, "") == "1"


def missing_reason(name: str) -> str:
    return f"{name} not found on PATH nor in {TOOLS_BIN}; run `bash scripts/install_prometheus.sh`"


def require_tool(name: str) -> Path:
    """The tool's path; otherwise skip the calling test with the reason, or fail it
    when HODEI_REQUIRE_PROMETHEUS=1."""
    import pytest

    path = find_tool(name)
    if path is not None:
        return path
    if tool_required():
        pytest.fail(f"{REQUIRE_ENV}=1 and {missing_reason(name)}", pytrace=False)
    pytest.skip(missing_reason(name))


#: Where Debian's Alertmanager reads its default notification template; it does not
#: start without it (scripts/install_prometheus.sh puts it there when run as root).
DEBIAN_ALERTMANAGER_TEMPLATE = Path("/usr/share/prometheus/alertmanager/default.tmpl")


def require_alertmanager() -> Path:
    """Alertmanager's binary, as require_tool finds one: upstream's `alertmanager`, or
    Debian's `prometheus-alertmanager` when its default template is in place."""
    import pytest

    upstream = find_tool("alertmanager")
    if upstream is not None:
        return upstream
    debian = require_tool("prometheus-alertmanager")
    if DEBIAN_ALERTMANAGER_TEMPLATE.is_file():
        return debian
    reason = (
        f"{DEBIAN_ALERTMANAGER_TEMPLATE} is missing; run `bash scripts/install_prometheus.sh` "
        "as root"
    )
    if tool_required():
        pytest.fail(f"{REQUIRE_ENV}=1 and {reason}", pytrace=False)
    pytest.skip(reason)


def scrape_config(
    targets: dict[str, list[str]],
    rule_files: list[Path],
    scrape_interval: str = "1s",
) -> dict[str, Any]:
    """A prometheus.yml (as a dict; JSON is YAML) with one static scrape job per name in
    `targets` ({"hodei-server": ["127.0.0.1:9464"], ...}) and the rule files loaded.
    A job with no target is left out (Prometheus accepts it, but it says nothing)."""
    return {
        "global": {
            "scrape_interval": scrape_interval,
            "evaluation_interval": scrape_interval,
        },
        "rule_files": [str(p) for p in rule_files],
        "scrape_configs": [
            {
                "job_name": job,
                "scrape_interval": scrape_interval,
                "scrape_timeout": scrape_interval,
                "static_configs": [{"targets": sorted(hosts)}],
            }
            for job, hosts in targets.items()
            if hosts
        ],
    }


def host_port(url: str) -> str:
    """ "127.0.0.1:9464" from "http://127.0.0.1:9464/metrics": what a scrape target is."""
    parsed = urllib.parse.urlsplit(url if "//" in url else f"//{url}")
    if parsed.hostname is None or parsed.port is None:
        raise ValueError(f"not a metrics URL with host and port: {url!r}")
    return f"{parsed.hostname}:{parsed.port}"


@dataclass
class PrometheusServer:
    """One Prometheus process on loopback, with its config and tmp storage in `workdir`.

    `start()` returns once /-/ready answers 200; `stop()` ends it (SIGTERM, then SIGKILL).
    """

    binary: Path
    workdir: Path
    targets: dict[str, list[str]]
    rule_files: list[Path] = field(default_factory=lambda: [ALERT_RULES])
    scrape_interval: str = "1s"
    start_timeout_s: float = 30.0
    port: int = 0
    _proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "prometheus.log"

    def start(self) -> PrometheusServer:
        from harness.launchers.base import free_port

        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "prometheus.yml"
        config.write_text(
            json.dumps(scrape_config(self.targets, self.rule_files, self.scrape_interval), indent=2)
        )
        self.port = self.port or free_port()
        argv = [
            str(self.binary),
            f"--config.file={config}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--storage.tsdb.retention.time=1h",
        ]
        self._proc = _launch(
            argv,
            self.log_path,
            self.url,
            Said("WAIT_PROMETHEUS_READY", "Prometheus at {url} to answer /-/ready", url=self.url),
            self.start_timeout_s,
        )
        return self

    def log_tail(self, lines: int = 10) -> str:
        return _log_tail(self.log_path, lines)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        _end(proc)

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the HTTP API ---------------------------------------------------------------
    def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/<path>; the `data` of a success, else PrometheusError with the
        error Prometheus gave."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        try:
            with urllib.request.urlopen(
                f"{self.url}/api/v1/{path}{query}", timeout=HTTP_TIMEOUT_S
            ) as reply:
                body = json.load(reply)
        except urllib.error.HTTPError as exc:
            body = json.loads(exc.read() or b"{}")
        if body.get("status") != "success":
            raise PrometheusError(
                f"/api/v1/{path} {params}: {body.get('errorType')}: {body.get('error')}"
            )
        return body["data"]

    def query(self, expr: str) -> list[tuple[dict[str, str], float]]:
        """An instant query's vector as (labels, value) pairs."""
        data = self.api("query", query=expr)
        if data["resultType"] != "vector":
            raise PrometheusError(f"{expr!r} is a {data['resultType']}, not an instant vector")
        return [(dict(s["metric"]), float(s["value"][1])) for s in data["result"]]

    def targets_health(self) -> list[tuple[str, str, str]]:
        """(job, instance, health) of every active scrape target."""
        data = self.api("targets", state="active")
        return [
            (t["labels"].get("job", ""), t["labels"].get("instance", ""), t["health"])
            for t in data["activeTargets"]
        ]

    def rules(self) -> list[dict[str, Any]]:
        """Every loaded rule (name, state, health, lastError...), all groups together."""
        return [rule for group in self.api("rules")["groups"] for rule in group["rules"]]

    def alerts(self) -> list[dict[str, Any]]:
        """The active alerts (pending or firing), with their labels."""
        return list(self.api("alerts")["alerts"])


def start_prometheus(
    workdir: Path, targets: dict[str, list[str]], timeout_s: float = 30.0
) -> PrometheusServer:
    """A started Prometheus scraping `targets` every second with Hodei's alert rules;
    PrometheusError when the binary is missing or it does not come up."""
    binary = find_tool("prometheus")
    if binary is None:
        raise PrometheusError(missing_reason("prometheus"))
    server = PrometheusServer(binary, workdir, targets, start_timeout_s=timeout_s)
    started = time.monotonic()
    with contextlib.suppress(AssertionError):
        return server.start()
    raise PrometheusError(
        f"prometheus did not answer /-/ready within {time.monotonic() - started:.0f}s; "
        f"log {server.log_path}: {server.log_tail()}"
    )


@dataclass
class AlertmanagerServer:
    """One Alertmanager on loopback with `config` (deploy/prometheus/alertmanager.yml),
    storage in `workdir`, no cluster gossip. `start()` returns once /-/ready answers."""

    binary: Path
    workdir: Path
    config: Path
    start_timeout_s: float = 30.0
    port: int = 0
    _proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "alertmanager.log"

    def start(self) -> AlertmanagerServer:
        from harness.launchers.base import free_port

        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        argv = [
            str(self.binary),
            f"--config.file={self.config}",
            f"--storage.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",  # one instance, loopback only
        ]
        self._proc = _launch(
            argv,
            self.log_path,
            self.url,
            f"Alertmanager at {self.url} to answer /-/ready",
            self.start_timeout_s,
        )
        return self

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        _end(proc)

    def __enter__(self) -> AlertmanagerServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def post_alerts(self, alerts: list[dict[str, str]], minutes: float = 10.0) -> None:
        """POST /api/v2/alerts: each a set of labels, firing from now for `minutes`."""
        now = datetime.now(UTC)
        body = [
            {
                "labels": labels,
                "annotations": {"summary": labels.get("alertname", "")},
                "startsAt": now.isoformat(),
                "endsAt": (now + timedelta(minutes=minutes)).isoformat(),
            }
            for labels in alerts
        ]
        request = urllib.request.Request(
            f"{self.url}/api/v2/alerts",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as reply:
            if reply.status != 200:
                raise PrometheusError(f"Alertmanager refused the alerts: HTTP {reply.status}")

    def alerts(self) -> list[dict[str, Any]]:
        """GET /api/v2/alerts: every alert it holds, with its status (state, inhibitedBy)."""
        with urllib.request.urlopen(f"{self.url}/api/v2/alerts", timeout=HTTP_TIMEOUT_S) as reply:
            found: list[dict[str, Any]] = json.load(reply)
        return found


def _launch(
    argv: list[str], log_path: Path, url: str, what: str, timeout_s: float
) -> subprocess.Popen[bytes]:
    """Start one of the Prometheus programs (its output into `log_path`) and wait until
    `url`/-/ready answers 200; PrometheusError, with its log's tail, if it exits first."""
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=log_path.parent,
            start_new_session=True,
        )

    def ready() -> bool:
        if proc.poll() is not None:
            raise PrometheusError(
                f"{Path(argv[0]).name} exited with code {proc.returncode} while starting; "
                f"log {log_path}: {_log_tail(log_path)}"
            )
        with urllib.request.urlopen(f"{url}/-/ready", timeout=HTTP_TIMEOUT_S) as reply:
            return bool(reply.status == 200)

    try:
        wait_for(what, ready, bool, timeout_s, poll_s=0.1, abort_on=(PrometheusError,))
    except BaseException:
        _end(proc)
        raise
    return proc


def _end(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM, then SIGKILL after 10 s; nothing for a process already gone."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def _log_tail(path: Path, lines: int = 10) -> str:
    if not path.exists():
        return "<no log>"
    text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return " | ".join(text[-lines:]) or "<empty log>"
