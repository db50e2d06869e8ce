"""deploy/prometheus/alertmanager.yml against a real Alertmanager on loopback: while a
server cannot reach its database, the alerts that follow from it are inhibited (one
page per outage), the others are not, and every alert of hodei-alerts.yml has been
placed on one side or the other."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.launchers.base import free_port
from harness.prometheus import REQUIRE_ENV, SERVER_JOB, find_tool, require_tool, tool_required
from harness.waits import wait_for
from tests.deploy_files import ROOT, alert_rules

pytestmark = pytest.mark.integration

#: (alertname, job) -> (state, inhibited by something), as Alertmanager's API says.
States = dict[tuple[str, str], tuple[str, bool]]

CONFIG = ROOT / "deploy" / "prometheus" / "alertmanager.yml"
SOURCE = "HodeiDatabaseUnreachable"
#: What a database outage explains (docs/observability.md, "Alertmanager").
CONSEQUENCES = {
    "HodeiDispatcherStalled",
    "HodeiDispatcherErrors",
    "HodeiOutboxPublishLag",
    "HodeiWorkerStreamErrors",
    "HodeiNoReadyWorker",
    "HodeiQueueGrowing",
    "HodeiWorkerLost",
}
#: What it does not: always paged.
NEVER_INHIBITED = {SOURCE, "HodeiJobFailureRatio", "HodeiServerDown"}


#: Where Debian's build reads its default notification template (it does not start
#: without it); scripts/install_prometheus.sh puts it there when run as root.
DEBIAN_TEMPLATE = Path("/usr/share/prometheus/alertmanager/default.tmpl")


def _binary() -> Path:
    # Upstream's release is `alertmanager`; Debian's, `prometheus-alertmanager`.
    found = find_tool("alertmanager")
    if found is not None:
        return found
    debian = require_tool("prometheus-alertmanager")
    if not DEBIAN_TEMPLATE.is_file():
        reason = f"{DEBIAN_TEMPLATE} is missing; run `bash scripts/install_prometheus.sh` as root"
        if tool_required():
            pytest.fail(f"{REQUIRE_ENV}=1 and {reason}", pytrace=False)
        pytest.skip(reason)
    return debian


class Alertmanager:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = (workdir / "alertmanager.log").open("wb")
        self.proc = subprocess.Popen(
            [
                str(_binary()),
                f"--config.file={CONFIG}",
                f"--storage.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",  # no gossip: one instance, loopback only
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_for("Alertmanager ready", self._ready, bool, 30.0, 0.1)

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"alertmanager exited {self.proc.returncode}: see {self.log.name}")
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def post(self, alerts: list[dict[str, str]]) -> None:
        now = datetime.now(UTC)
        body = [
            {
                "labels": labels,
                "annotations": {"summary": labels["alertname"]},
                "startsAt": now.isoformat(),
                "endsAt": (now + timedelta(minutes=10)).isoformat(),
            }
            for labels in alerts
        ]
        request = urllib.request.Request(
            f"{self.url}/api/v2/alerts",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert answer.status == 200

    def states(self) -> States:
        """(alertname, job) -> (state, inhibited by something)."""
        with urllib.request.urlopen(f"{self.url}/api/v2/alerts", timeout=5) as answer:
            alerts: list[dict[str, Any]] = json.load(answer)
        return {
            (a["labels"]["alertname"], a["labels"].get("job", "")): (
                a["status"]["state"],
                bool(a["status"]["inhibitedBy"]),
            )
            for a in alerts
        }

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[Alertmanager]:
    manager = Alertmanager(tmp_path)
    try:
        yield manager
    finally:
        manager.stop()


def _alert(name: str, job: str = SERVER_JOB, **labels: str) -> dict[str, str]:
    return {"alertname": name, "job": job, "severity": "warning", **labels}


def _states_when(
    manager: Alertmanager, what: str, done: Callable[[States], bool], timeout_s: float = 10.0
) -> States:
    # The inhibitor learns of a source asynchronously (milliseconds): poll for it.
    return wait_for(what, manager.states, done, timeout_s, 0.2)


def test_a_database_outage_pages_once(alertmanager: Alertmanager) -> None:
    alertmanager.post(
        [
            _alert(SOURCE, instance="hodei-1:9464", severity="critical"),
            *(_alert(name) for name in CONSEQUENCES),
            _alert("HodeiJobFailureRatio"),
            _alert("HodeiServerDown", instance="hodei-2:9464", severity="critical"),
            # Another deployment's alert of the same name: not this outage's.
            _alert("HodeiDispatcherStalled", job="other-hodei"),
        ]
    )
    states = _states_when(
        alertmanager,
        "every consequence of the outage suppressed",
        lambda got: all(
            got.get((name, SERVER_JOB), ("",))[0] == "suppressed" for name in CONSEQUENCES
        ),
    )
    assert len(states) == len(CONSEQUENCES) + 4
    for name in CONSEQUENCES:
        assert states[(name, SERVER_JOB)] == ("suppressed", True), name
    for name in NEVER_INHIBITED:
        assert states[(name, SERVER_JOB)] == ("active", False), name
    assert states[("HodeiDispatcherStalled", "other-hodei")] == ("active", False)


def test_without_the_database_alert_nothing_is_inhibited(alertmanager: Alertmanager) -> None:
    alertmanager.post([_alert(name) for name in CONSEQUENCES | {"HodeiJobFailureRatio"}])
    _states_when(alertmanager, "the alerts received", lambda got: len(got) == len(CONSEQUENCES) + 1)
    time.sleep(1.0)  # what an inhibition would have needed to show
    states = alertmanager.states()
    assert set(states.values()) == {("active", False)}, states


def test_every_alert_is_placed_and_every_inhibited_name_exists() -> None:
    shipped = {rule["alert"] for rule in alert_rules()}
    assert shipped == CONSEQUENCES | NEVER_INHIBITED  # a new alert needs a decision here
    rules = yaml.safe_load(CONFIG.read_text())["inhibit_rules"]
    named = " ".join(m for rule in rules for m in rule["target_matchers"])
    assert all(name in named for name in CONSEQUENCES)
    assert not any(name in named for name in NEVER_INHIBITED)


def test_amtool_accepts_the_config() -> None:
    amtool = require_tool("amtool")
    result = subprocess.run(
        [str(amtool), "check-config", str(CONFIG)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout and "1 inhibit rules" in result.stdout
