"""Metrics steps: one sentence, one harness call (harness.prometheus_scene)."""

from pytest_bdd import given, then

from harness import prometheus_scene
from harness.world import World


@given("a Prometheus scraping the platform's servers and workers")
def _prometheus(world: World) -> None:
    prometheus_scene.start(world)


@then("Prometheus sees every server and worker up")
def _targets_up(world: World) -> None:
    prometheus_scene.every_target_up(world)


@then("Prometheus has loaded and evaluated the Hodei alert rules")
def _rules_loaded(world: World) -> None:
    prometheus_scene.rules_loaded(world)


@then("Prometheus's job counters match the jobs table")
def _counters(world: World) -> None:
    prometheus_scene.job_counters_match_table(world)


@then("no Hodei alert is pending or firing")
def _no_alerts(world: World) -> None:
    prometheus_scene.no_alert_active(world)
