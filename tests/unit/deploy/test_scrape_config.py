"""deploy/prometheus/prometheus.yml, the example scrape configuration: promtool accepts
it (with the rule file it loads) and it uses the job names the rules select on."""

from __future__ import annotations

import subprocess

import yaml

from harness.prometheus import SERVER_JOB, WORKER_JOB, require_tool
from tests.deploy_files import ALERT_RULES, SCRAPE_EXAMPLE


def test_the_example_passes_promtool_check_config() -> None:
    result = subprocess.run(
        [str(require_tool("promtool")), "check", "config", SCRAPE_EXAMPLE.name],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=SCRAPE_EXAMPLE.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout


def test_the_example_scrapes_the_contract_jobs_and_loads_the_rules() -> None:
    config = yaml.safe_load(SCRAPE_EXAMPLE.read_text())
    assert [job["job_name"] for job in config["scrape_configs"]] == [SERVER_JOB, WORKER_JOB]
    assert config["rule_files"] == [ALERT_RULES.name]
