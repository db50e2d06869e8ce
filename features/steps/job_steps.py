"""Job lifecycle steps: one sentence, one harness call."""

from pytest_bdd import parsers, then, when

from harness.world import World


@when(parsers.re(r'I queue a job running "(?P<script>[^"]*)"$'))
def _queue(world: World, script: str) -> None:
    world.queue_shell(script)


@when(parsers.parse('I queue a job running "{script}" with a timeout of {seconds:g} seconds'))
def _queue_timeout(world: World, script: str, seconds: float) -> None:
    world.queue_shell(script, timeout_s=seconds)


@when(parsers.parse("the job reaches state {state:w}"))
@then(parsers.parse("the job reaches state {state:w}"))
def _reaches(world: World, state: str) -> None:
    world.job_reaches(state)


@when("I cancel the job")
def _cancel(world: World) -> None:
    world.cancel_job()


@then(parsers.parse("the job's exit code is {code:d}"))
def _exit_code(world: World, code: int) -> None:
    world.exit_code_is(code)


@then(parsers.parse("the job took {attempts:d} attempts"))
def _attempts(world: World, attempts: int) -> None:
    world.attempts_are(attempts)


@then(parsers.parse("the job went through the states {states}"))
def _history(world: World, states: str) -> None:
    world.state_history_is(states)


@then("the job has left the queue")
def _left_queue(world: World) -> None:
    world.job_left_queue()


@then(parsers.parse("the job's domain events include {events} in that order"))
def _events(world: World, events: str) -> None:
    world.events_in_order(events)


@then("the job has one outbox row per domain event")
def _outbox_rows(world: World) -> None:
    world.outbox_matches_events()


@then("every outbox row of the job is published")
def _outbox_published(world: World) -> None:
    world.outbox_published()


@when("I kill the worker running the job")
def _kill(world: World) -> None:
    world.kill_job_worker()


@when("I start a replacement worker")
def _replace(world: World) -> None:
    world.start_replacement_worker()


@when(parsers.parse('I queue a burst of {count:d} jobs running "{script}"'))
def _burst(world: World, count: int, script: str) -> None:
    world.queue_burst(count, script)


@then(parsers.parse("all burst jobs reach state {state:w} within {seconds:d} seconds"))
def _burst_done(world: World, state: str, seconds: int) -> None:
    world.burst_finishes(state, seconds)


@then("the throughput in jobs per minute is recorded")
def _throughput(world: World) -> None:
    world.record_throughput()
