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
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
                start_new_session=True,
            )
        try:
            wait_for(
                Said(
                    "WAIT_PROMETHEUS_READY", "Prometheus at {url} to answer /-/ready", url=self.url
                ),
                self._ready,
                bool,
                self.start_timeout_s,
                poll_s=0.1,
                abort_on=(PrometheusError,),
            )
        except BaseException:
            self.stop()
            raise
        return self

    def _ready(self) -> bool:
        proc = self._proc
        if proc is not None and proc.poll() is not None:
            raise PrometheusError(
                f"prometheus exited with code {proc.returncode} while starting; "
                f"log {self.log_path}: {self.log_tail()}"
            )
        with urllib.request.urlopen(f"{self.url}/-/ready", timeout=HTTP_TIMEOUT_S) as reply:
            return bool(reply.status == 200)

    def log_tail(self, lines: int = 10) -> str:
        if not self.log_path.exists():
            return "<no log>"
        text = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        return " | ".join(text[-lines:]) or "<empty log>"

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

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
