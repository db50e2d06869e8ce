"""deploy/prometheus/alertmanager.yml against a real Alertmanager on loopback: while a
server cannot reach its database, the alerts that follow from it are inhibited (one
page per outage), the others are not, and every alert of hodei-alerts.yml has been
placed on one side or the other."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from harness.prometheus import (
    SERVER_JOB,
    AlertmanagerServer,
    require_alertmanager,
    require_tool,
)
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


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[AlertmanagerServer]:
    with AlertmanagerServer(require_alertmanager(), tmp_path, CONFIG) as manager:
        yield manager


def states(manager: AlertmanagerServer) -> States:
    """(alertname, job) -> (state, inhibited by something)."""
    return {
        (a["labels"]["alertname"], a["labels"].get("job", "")): (
            a["status"]["state"],
            bool(a["status"]["inhibitedBy"]),
        )
        for a in manager.alerts()
    }


def _alert(name: str, job: str = SERVER_JOB, **labels: str) -> dict[str, str]:
    return {"alertname": name, "job": job, "severity": "warning", **labels}


def _states_when(
    manager: AlertmanagerServer, what: str, done: Callable[[States], bool], timeout_s: float = 10.0
) -> States:
    # The inhibitor learns of a source asynchronously (milliseconds): poll for it.
    return wait_for(what, lambda: states(manager), done, timeout_s, 0.2)


def test_a_database_outage_pages_once(alertmanager: AlertmanagerServer) -> None:
    alertmanager.post_alerts(
        [
            _alert(SOURCE, instance="hodei-1:9464", severity="critical"),
            *(_alert(name) for name in CONSEQUENCES),
            _alert("HodeiJobFailureRatio"),
            _alert("HodeiServerDown", instance="hodei-2:9464", severity="critical"),
            # Another deployment's alert of the same name: not this outage's.
            _alert("HodeiDispatcherStalled", job="other-hodei"),
        ]
    )
    seen = _states_when(
        alertmanager,
        "every consequence of the outage suppressed",
        lambda got: all(
            got.get((name, SERVER_JOB), ("",))[0] == "suppressed" for name in CONSEQUENCES
        ),
    )
    assert len(seen) == len(CONSEQUENCES) + 4
    for name in CONSEQUENCES:
        assert seen[(name, SERVER_JOB)] == ("suppressed", True), name
    for name in NEVER_INHIBITED:
        assert seen[(name, SERVER_JOB)] == ("active", False), name
    assert seen[("HodeiDispatcherStalled", "other-hodei")] == ("active", False)


def test_without_the_database_alert_nothing_is_inhibited(alertmanager: AlertmanagerServer) -> None:
    alertmanager.post_alerts([_alert(name) for name in CONSEQUENCES | {"HodeiJobFailureRatio"}])
    _states_when(alertmanager, "the alerts received", lambda got: len(got) == len(CONSEQUENCES) + 1)
    time.sleep(1.0)  # what an inhibition would have needed to show
    now = states(alertmanager)
    assert set(now.values()) == {("active", False)}, now


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
