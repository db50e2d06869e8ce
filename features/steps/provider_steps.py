"""Workers-on-demand steps: one sentence, one harness call (harness.providers_scene)."""

from pytest_bdd import given, parsers, then, when

from harness import providers_scene
from harness.world import World


@given("a server that provisions Docker workers on demand")
def _scaling_server(world: World) -> None:
    providers_scene.start_scaling_server(world)


@given("a server that provisions Docker workers from a missing image")
def _scaling_server_missing_image(world: World) -> None:
    providers_scene.start_scaling_server(world, missing_image=True)


@when(parsers.parse('I queue a job for the provisioned pool running "{script}"'))
def _queue_for_pool(world: World, script: str) -> None:
    providers_scene.queue_for_pool(world, script)


@then("the job succeeds on a worker the Docker provider started")
def _succeeds_on_provisioned(world: World) -> None:
    providers_scene.job_succeeds_on_a_provisioned_worker(world)


@then("the provisioned worker's container is gone after its idle TTL")
def _container_gone(world: World) -> None:
    providers_scene.container_gone_after_idle(world)


@then("the scaler records a provisioning failure naming the image")
def _failure_recorded(world: World) -> None:
    providers_scene.provisioning_failure_recorded(world)


@then("hodei-diagnose names the failing provisioning")
def _diagnose_names_it(world: World) -> None:
    providers_scene.diagnose_names_provisioning(world)
