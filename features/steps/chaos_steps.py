"""Chaos steps: one sentence, one harness call."""

from pytest_bdd import given, parsers, then, when

from harness.world import World


@given("a private platform for chaos on the local launcher")
def _chaos_platform(world: World) -> None:
    world.start_chaos_platform()


@when(parsers.parse("the server is killed and restarted in the middle of a burst of {jobs:d} jobs"))
def _server_kill(world: World, jobs: int) -> None:
    world.kill_server_during_burst(jobs)


@when(parsers.parse("the embedded database is restarted in the middle of a burst of {jobs:d} jobs"))
def _database_restart(world: World, jobs: int) -> None:
    world.restart_database_during_burst(jobs)


@then("no job was lost, none ran twice and no client retry made a duplicate")
def _exactly_once(world: World) -> None:
    world.chaos_jobs_ran_once()


@then("no process logged a traceback")
def _no_tracebacks(world: World) -> None:
    world.chaos_no_tracebacks()
