"""Platform health and worker steps: one sentence, one harness call."""

from pytest_bdd import given, parsers, then

from harness.world import World


@given("the platform is running")
def _platform_running(world: World) -> None:
    world.platform_is_running()


@given("the launcher can kill platform processes")
def _can_kill(world: World) -> None:
    world.require_process_control()


@given("the process logs can be scanned")
def _logs_scannable(world: World) -> None:
    world.require_log_files()


@then("the database answers a query")
def _db_answers(world: World) -> None:
    world.database_answers()


@then("the schema migrations are applied")
def _migrations(world: World) -> None:
    world.migrations_applied()


@then("the gRPC health service reports SERVING")
def _health(world: World) -> None:
    world.grpc_health_serving()


@then("the server port is listening")
def _port(world: World) -> None:
    world.port_listening()


@then(parsers.parse("at least {count:d} worker is connected and READY"))
def _workers_ready(world: World, count: int) -> None:
    world.workers_ready(count)


@then("every connected worker's heartbeat advances")
def _heartbeats(world: World) -> None:
    world.heartbeats_advance()
