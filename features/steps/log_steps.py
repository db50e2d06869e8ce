"""Log streaming and keepalive steps: one sentence, one harness call."""

from pytest_bdd import parsers, then, when

from harness.world import World


@when(parsers.parse('I run "{script}" with the hodei CLI'))
def _cli_run(world: World, script: str) -> None:
    world.run_with_cli(script)


@then(parsers.parse("the CLI exits with code {code:d}"))
def _cli_exit(world: World, code: int) -> None:
    world.cli_exit_code(code)


@then(parsers.parse("the CLI printed on {stream:w} the lines: {lines}"))
def _cli_printed(world: World, stream: str, lines: str) -> None:
    world.cli_printed(stream, lines)


@when(parsers.parse('I queue a job running "{script}" while following its logs'))
def _follow(world: World, script: str) -> None:
    world.queue_shell_following_logs(script)


@then(parsers.parse('the log stream received stdout "{stdout}" and stderr "{stderr}" and ended'))
def _received(world: World, stdout: str, stderr: str) -> None:
    world.subscription_received(stdout, stderr)


@when(parsers.parse("the platform stays idle for {periods:d} keepalive periods"))
def _idle(world: World, periods: int) -> None:
    world.stay_idle(periods)


@then("no gRPC stream error appears in the server or worker logs")
def _no_grpc_errors(world: World) -> None:
    world.no_grpc_errors_since_idle()
