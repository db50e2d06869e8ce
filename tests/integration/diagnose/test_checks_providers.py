"""hodei-diagnose on deployments whose workers on demand go wrong, broken from outside
through providers.yaml only: provisioning that fails, provisioned workers that never
register, a provider that cannot be reached. Each is named by its check and finding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.waits import wait_for_async
from tests.integration.diagnose.deployments import queue_job, targets
from tests.integration.providers.scaling import provider_statuses, providers_file, provisioned

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


async def scaling_server(start_server: Any, path: Path) -> Any:
    return await start_server(
        scaling={"providers_file": path, "interval": 0.2, "failure_threshold": 1}
    )


async def test_failing_provisioning_is_named_with_the_providers_error(
    db_url: str, start_server: Any, run_diagnose: Any, diag_tokens: dict[str, str], tmp_path: Path
) -> None:
    path = providers_file(
        tmp_path,
        {"name": "broken", "type": "process", "process": {"command": ["/nonexistent/worker"]}},
    )
    app = await scaling_server(start_server, path)
    await queue_job(app.address, ["true"], diag_tokens["admin"])
    await wait_for_async(
        "a failed provisioning", lambda: provisioned(db_url), lambda r: bool(r), timeout_s=20
    )

    run = await run_diagnose(*targets(db_url, app.address), "--only", "providers")

    assert run.code == 2, (run.failing(), run.stdout)
    check = run.check("providers.provisioning")
    assert check["status"] == "FAIL"
    assert "cannot start '/nonexistent/worker'" in check["observed"]
    assert run.report["root_cause_code"] == "PROVISIONING_FAILING"
    assert "Provider broken failed to start a worker" in run.report["root_cause"]
    assert run.check("providers.reachable")["status"] == "PASS"


async def test_provisioned_workers_that_never_register_are_named(
    db_url: str, start_server: Any, run_diagnose: Any, diag_tokens: dict[str, str], tmp_path: Path
) -> None:
    # A "worker" that starts and lives but never dials the server.
    sleeper = ["python3", "-c", "import time; time.sleep(120)"]
    path = providers_file(
        tmp_path, {"name": "mute", "type": "process", "process": {"command": sleeper}}
    )
    app = await scaling_server(start_server, path)
    await queue_job(app.address, ["true"], diag_tokens["admin"])
    (row,) = await wait_for_async(
        "a started worker",
        lambda: provisioned(db_url),
        lambda r: bool(r) and r[0]["state"] == "RUNNING",
        timeout_s=20,
    )

    run = await run_diagnose(
        *targets(db_url, app.address),
        "--only",
        "providers",
        "--threshold",
        "provision_register_s=0",
    )

    assert run.code == 2, (run.failing(), run.stdout)
    check = run.check("providers.registration")
    assert check["status"] == "FAIL"
    assert any(row["worker_name"] in e for e in check["evidence"])
    assert run.report["root_cause_code"] == "PROVISIONED_NOT_REGISTERED"


async def test_an_unreachable_provider_is_named_with_what_it_said(
    db_url: str, start_server: Any, run_diagnose: Any, tmp_path: Path
) -> None:
    path = providers_file(
        tmp_path,
        {"name": "far", "type": "docker", "docker": {"base_url": "unix:///nonexistent/d.sock"}},
    )
    app = await scaling_server(start_server, path)
    await wait_for_async(
        "the provider's status", lambda: provider_statuses(db_url), bool, timeout_s=20
    )

    run = await run_diagnose(*targets(db_url, app.address), "--only", "providers")

    assert run.code == 2, (run.failing(), run.stdout)
    check = run.check("providers.reachable")
    assert check["status"] == "FAIL"
    assert "cannot reach the Docker daemon" in check["observed"]
    assert run.report["root_cause_code"] == "PROVIDER_UNREACHABLE"
    # Nothing was asked of it: no provisioning to report.
    assert run.check("providers.provisioning")["status"] == "PASS"
