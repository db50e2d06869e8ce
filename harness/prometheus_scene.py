"""The @metrics scenario's own Prometheus: a real `prometheus` process that scrapes the
run's servers and workers, and the checks asked through its HTTP API.

The scenario starts it (`start`), so that it scrapes the processes alive at that moment
(workers killed and replaced by earlier scenarios included: every process of the run is
in its `processes.jsonl`); `World.close` stops it. One function per step sentence.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import pytest

from harness.expect import expect
from harness.processes import alive
from harness.prometheus import (
    REQUIRE_ENV,
    SERVER_JOB,
    WORKER_JOB,
    PrometheusError,
    PrometheusServer,
    find_tool,
    missing_reason,
    tool_required,
)
from harness.waits import Said, wait_for

if TYPE_CHECKING:
    from harness.context import E2EContext


class World(Protocol):
    """What the scene needs of the scenario's world (harness.world.World), named here
    so that this module does not import the world that imports it."""

    ctx: E2EContext
    metrics: dict[str, float]
    prometheus: PrometheusScene | None


#: Scrape jobs by process role (the metric contract's names).
JOB_OF_ROLE = {"server": SERVER_JOB, "worker": WORKER_JOB}
#: Long enough for a few 1 s scrapes and rule evaluations on a loaded 2-core machine.
SCRAPE_WAIT_S = 20.0
#: The counters are scraped every second; a scenario next to this one (xdist) may
#: finish jobs in between, so they are compared until both readings agree.
COUNTERS_WAIT_S = 20.0


@dataclass(frozen=True)
class Target:
    job: str
    instance: str  # host:port, as Prometheus labels it
    name: str
    pid: int


def metrics_targets(ctx: E2EContext) -> list[Target]:
    """The run's live servers and workers that serve /metrics: every process the run
    recorded (by any xdist worker, replacements too), not only the first ones."""
    entries: dict[int, dict[str, object]] = {
        p.pid: {"role": p.role, "name": p.name, "pid": p.pid, "metrics_port": p.metrics_port}
        for p in ctx.deployment.processes
        if p.pid is not None
    }
    registry = ctx.run_dir / "processes.jsonl"
    if registry.exists():
        for line in registry.read_text(encoding="utf-8").splitlines():
            if line.strip():
                entry = json.loads(line)
                entries[int(entry["pid"])] = entries.get(int(entry["pid"]), {}) | entry
    targets = []
    for pid, entry in sorted(entries.items()):
        job = JOB_OF_ROLE.get(str(entry["role"]))
        port = int(str(entry.get("metrics_port") or 0))
        if job and port and alive(pid):
            targets.append(Target(job, f"127.0.0.1:{port}", str(entry["name"]), pid))
    return targets


class PrometheusScene:
    """A started Prometheus and what the scenario compares with it."""

    def __init__(self, ctx: E2EContext, server: PrometheusServer, targets: list[Target]) -> None:
        self.ctx = ctx
        self.server = server
        self.targets = targets

    def close(self) -> None:
        self.server.stop()


def _scene(world: World) -> PrometheusScene:
    assert world.prometheus is not None, "no Prometheus was started in this scenario"
    return world.prometheus


# -- given ---------------------------------------------------------------------------
def start(world: World) -> None:
    """A Prometheus scraping the run's live servers and workers every second, with
    Hodei's alert rules; skipped (with the reason) where it cannot run."""
    ctx = world.ctx
    if ctx.mode != "local":
        pytest.skip(
            f"the {ctx.mode} launcher does not give the harness its processes' metrics "
            "ports; the @metrics scenario runs on the local launcher"
        )
    binary = find_tool("prometheus")
    if binary is None:
        if tool_required():
            pytest.fail(f"{REQUIRE_ENV}=1 and {missing_reason('prometheus')}", pytrace=False)
        pytest.skip(missing_reason("prometheus"))
    targets = metrics_targets(ctx)
    roles = {t.job for t in targets}
    assert roles == {SERVER_JOB, WORKER_JOB}, (
        f"the run has no live {sorted({SERVER_JOB, WORKER_JOB} - roles)} with a metrics "
        f"port to scrape (processes: {[(t.name, t.instance) for t in targets]})"
    )
    by_job: dict[str, list[str]] = {SERVER_JOB: [], WORKER_JOB: []}
    for target in targets:
        by_job[target.job].append(target.instance)
    workdir = ctx.run_dir / f"prometheus-{os.getpid()}-{time.monotonic_ns()}"
    started = time.perf_counter()
    try:
        server = PrometheusServer(binary, workdir, by_job).start()
    except PrometheusError as exc:
        raise AssertionError(str(exc)) from None
    world.prometheus = PrometheusScene(ctx, server, targets)
    world.metrics["prometheus_ready_s"] = round(time.perf_counter() - started, 3)
    world.metrics["prometheus_targets"] = float(len(targets))


# -- then ----------------------------------------------------------------------------
def every_target_up(world: World) -> None:
    """`up == 1` for every server and worker (a process that has since ended, killed by a
    scenario running next to this one, is not expected up)."""
    scene = _scene(world)

    def probe() -> dict[str, float]:
        ups = {
            labels.get("instance", ""): value
            for labels, value in scene.server.query(f'up{{job=~"{SERVER_JOB}|{WORKER_JOB}"}}')
        }
        return {t.instance: ups.get(t.instance, -1.0) for t in scene.targets if alive(t.pid)}

    seen = wait_for(
        Said(
            "WAIT_PROMETHEUS_UP",
            "up == 1 in Prometheus for {count} target(s)",
            count=len(scene.targets),
        ),
        probe,
        lambda ups: bool(ups) and all(v == 1.0 for v in ups.values()),
        SCRAPE_WAIT_S,
        poll_s=0.25,
        give_up=scene.ctx.give_up,
        describe=lambda ups: {i: ("unscraped" if v < 0 else v) for i, v in ups.items()},
    )
    jobs = {t.job for t in scene.targets if t.instance in seen}
    expect(
        jobs == {SERVER_JOB, WORKER_JOB},
        "CHK_PROMETHEUS_JOBS",
        "Prometheus scraped {jobs}; expected both {SERVER_JOB} and {WORKER_JOB}",
        jobs=sorted(jobs),
        SERVER_JOB=SERVER_JOB,
        WORKER_JOB=WORKER_JOB,
    )


def rules_loaded(world: World) -> None:
    """Hodei's alert rules are loaded, each evaluated at least once without error."""
    from harness.prometheus import ALERT_RULES

    scene = _scene(world)
    shipped = _alert_names(ALERT_RULES.read_text())
    rules = wait_for(
        Said("WAIT_PROMETHEUS_RULES", "every Hodei alert rule evaluated by Prometheus"),
        scene.server.rules,
        lambda rules: (
            {r["name"] for r in rules} >= shipped
            and all(not r.get("lastEvaluation", "").startswith("0001-") for r in rules)
        ),
        SCRAPE_WAIT_S,
        poll_s=0.25,
        give_up=scene.ctx.give_up,
        describe=lambda rules: sorted(r["name"] for r in rules),
    )
    broken = {r["name"]: r.get("lastError", "") for r in rules if r.get("health") != "ok"}
    expect(
        not broken,
        "CHK_PROMETHEUS_RULES",
        "alert rules that Prometheus cannot evaluate: {broken}",
        broken=broken,
    )


def _alert_names(rules_text: str) -> set[str]:
    """The `alert:` names of a rule file (no YAML parser needed for that one key)."""
    return {
        line.split(":", 1)[1].strip()
        for line in rules_text.splitlines()
        if line.strip().startswith("- alert:")
    }


def job_counters_match_table(world: World) -> None:
    """sum(hodei_jobs_submitted_total) is the number of jobs in the table, and
    sum by (state) (hodei_jobs_finished_total) the count of each final state."""
    scene = _scene(world)
    tables = world.ctx.tables

    def probe() -> tuple[dict[str, int], dict[str, int]]:
        table = tables.job_counts()
        submitted = scene.server.query(f'sum(hodei_jobs_submitted_total{{job="{SERVER_JOB}"}})')
        finished = scene.server.query(
            f'sum by (state) (hodei_jobs_finished_total{{job="{SERVER_JOB}"}})'
        )
        seen = {"submitted": int(submitted[0][1]) if submitted else -1}
        seen |= {labels["state"]: int(value) for labels, value in finished if value}
        return table, seen

    def agree(readings: tuple[dict[str, int], dict[str, int]]) -> bool:
        table, seen = readings
        return table == seen

    _, seen = wait_for(
        Said("WAIT_PROMETHEUS_COUNTERS", "Prometheus's job counters to equal the jobs table"),
        probe,
        agree,
        COUNTERS_WAIT_S,
        poll_s=0.5,
        give_up=scene.ctx.give_up,
        describe=lambda r: f"table {r[0]}, Prometheus {r[1]}",
    )
    world.metrics["prometheus_jobs_submitted"] = float(seen["submitted"])


def no_alert_active(world: World) -> None:
    """No Hodei alert pending or firing: a healthy deployment under a burst is not an
    incident (rules with `for:` would only be pending within a short scenario, so
    pending counts too)."""
    scene = _scene(world)
    active = [
        f"{a['labels'].get('alertname')} ({a['state']}): {a['annotations'].get('description', '')}"
        for a in scene.server.alerts()
    ]
    expect(
        not active,
        "CHK_PROMETHEUS_ALERTS",
        "alerts active on a healthy deployment: {alerts}",
        alerts=active,
    )
