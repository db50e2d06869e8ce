"""Checks of workers on demand (the scaler, hodei.server.scaler): provisioning that
fails, provisioned workers that never register, providers that cannot be reached. All
read the database: the scaler's events (ProvisioningFailed, WorkerProvisioned), its
provisioned_workers rows and the provider_status it upserts every round. Skipped on a
deployment without a providers file (nothing recorded) or before migration 0012."""

from __future__ import annotations

from typing import Any

from hodei.diagnose.readings import probes
from hodei.diagnose.registry import CheckContext, Outcome, check
from hodei.durations import human_age
from hodei.report.model import Status


def _known(ctx: CheckContext) -> bool:
    if "providers_known" not in ctx.facts:
        ctx.facts["providers_known"] = bool(probes(ctx).one("providers_known").get("has_tables"))
    return bool(ctx.facts["providers_known"])


def _statuses(ctx: CheckContext) -> list[dict[str, Any]]:
    """The newest status of each provider (any server)."""
    if "provider_statuses" not in ctx.facts:
        newest: dict[str, dict[str, Any]] = {}
        for row in probes(ctx).all("provider_statuses"):
            newest.setdefault(row["provider"], row)
        ctx.facts["provider_statuses"] = list(newest.values())
    rows: list[dict[str, Any]] = ctx.facts["provider_statuses"]
    return rows


_NO_SCALER = "no providers recorded (no server runs with a providers file)"


@check(
    "providers.provisioning",
    "Providers",
    "Providers start the workers asked of them",
    "database",
    "a provider whose newest provisioning within activity_window_s failed "
    "(ProvisioningFailed, no WorkerProvisioned since) -> FAIL, with its last error",
)
def providers_provisioning(ctx: CheckContext) -> Outcome:
    if not _known(ctx):
        return Outcome(Status.SKIP, "no scaler tables (migration 0012 not applied)")
    window = human_age(ctx.thresholds.activity_window_s)
    rows = probes(ctx).all("provisioning_outcomes", {"window_s": ctx.thresholds.activity_window_s})
    if not rows and not _statuses(ctx):
        return Outcome(Status.SKIP, _NO_SCALER)
    threshold = "the newest provisioning of each provider worked"
    evidence = [
        f"provider {r['provider']}: {r['provisioned']} worker(s) started, {r['failed']} "
        f"failure(s) in {window}" + (f"; last error: {r['last_error']}" if r["failed"] else "")
        for r in rows
    ]
    failing = [
        r for r in rows if r["failed"] and (r["last_provisioned_id"] or 0) < r["last_failed_id"]
    ]
    if failing:
        worst = max(failing, key=lambda r: r["failed"])
        return Outcome(
            Status.FAIL,
            f"provider {worst['provider']} failed {worst['failed']} time(s) in {window}, "
            f"last {human_age(worst['last_age_s'])} ago: {worst['last_error']}",
            threshold,
            evidence,
            "PROVISIONING_FAILING",
            {
                "provider": worst["provider"],
                "count": worst["failed"],
                "error": worst["last_error"] or "",
                "window": window,
                "providers": ", ".join(r["provider"] for r in failing),
            },
        )
    started = sum(int(r["provisioned"]) for r in rows)
    return Outcome(Status.PASS, f"{started} worker(s) provisioned in {window}", threshold, evidence)


@check(
    "providers.registration",
    "Providers",
    "Provisioned workers register",
    "database",
    "a worker a provider started that has not registered after provision_register_s, "
    "or that the scaler gave up on for it within activity_window_s -> FAIL",
)
def providers_registration(ctx: CheckContext) -> Outcome:
    if not _known(ctx):
        return Outcome(Status.SKIP, "no scaler tables (migration 0012 not applied)")
    t = ctx.thresholds
    rows = probes(ctx).all(
        "provisioned_unregistered",
        {"grace_s": t.provision_register_s, "window_s": t.activity_window_s, "limit": 10},
    )
    threshold = f"registered within {human_age(t.provision_register_s)}"
    if not rows:
        if not _statuses(ctx):
            return Outcome(Status.SKIP, _NO_SCALER)
        return Outcome(Status.PASS, "every provisioned worker registered", threshold)
    evidence = [
        f"{r['worker_name']} ({r['provider']}, handle {r['handle']}): {r['state']}, started "
        f"{human_age(r['age_s'])} ago" + (f"; {r['last_error']}" if r["last_error"] else "")
        for r in rows
    ]
    first = rows[0]
    return Outcome(
        Status.FAIL,
        f"{len(rows)} provisioned worker(s) never registered, e.g. {first['worker_name']} "
        f"on {first['provider']}",
        threshold,
        evidence,
        "PROVISIONED_NOT_REGISTERED",
        {
            "count": len(rows),
            "provider": first["provider"],
            "workers": ", ".join(r["worker_name"] for r in rows[:3]),
        },
    )


@check(
    "providers.reachable",
    "Providers",
    "Every provider answers",
    "database",
    "a provider whose newest health check (by any server's scaler, within "
    "server_stale_s) failed -> FAIL, with what it said",
)
def providers_reachable(ctx: CheckContext) -> Outcome:
    if not _known(ctx):
        return Outcome(Status.SKIP, "no scaler tables (migration 0012 not applied)")
    statuses = _statuses(ctx)
    if not statuses:
        return Outcome(Status.SKIP, _NO_SCALER)
    fresh = [s for s in statuses if s["checked_age_s"] <= ctx.thresholds.server_stale_s]
    threshold = "healthy at the last check"
    evidence = [
        f"provider {s['provider']} ({s['provider_type']}): "
        f"{'healthy' if s['healthy'] else 'UNREACHABLE'} {human_age(s['checked_age_s'])} "
        f"ago: {s['detail']}" + (", circuit open" if s["circuit_open"] else "")
        for s in statuses
    ]
    down = [s for s in fresh if not s["healthy"]]
    if down:
        first = down[0]
        return Outcome(
            Status.FAIL,
            f"provider {first['provider']} cannot be reached: {first['detail']}",
            threshold,
            evidence,
            "PROVIDER_UNREACHABLE",
            {
                "provider": first["provider"],
                "type": first["provider_type"],
                "detail": first["detail"],
                "count": len(down),
            },
        )
    if not fresh:
        return Outcome(Status.SKIP, "no scaler checked a provider recently", threshold, evidence)
    return Outcome(Status.PASS, f"{len(fresh)} provider(s) healthy", threshold, evidence)
