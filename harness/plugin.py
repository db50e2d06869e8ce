"""pytest plugin of the e2e harness (the `pytest11` entry point `hodei-e2e`): thin hooks.

Each hook hands over to the module that holds its job:
- harness.options: the command-line options, the markers, the launcher asked for;
- harness.session: the platform started once per run (the xdist controller starts
  it and hands it to its workers), stopped at the end, its run directory removed
  after a green run and kept (and named) after a red one;
- harness.recording: every scenario with per-step timings and errors, from the
  pytest-bdd hooks, appended per pytest process to a JSONL file;
- harness.run_report: the controller's end-of-run evidence and the report
  (reports/e2e-report-<UTC>.md, latest.md, latest.json).
Nothing happens unless the run collects the features directory that the project names
in its `hodei_e2e_features` ini option (Hodei's pyproject.toml: `features`): `pytest
tests/`, and any other project's pytest run in the same environment, are unaffected.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from typing import Any

import pytest

from hodei.logging_setup import quiet_grpc_core

# This process drives the platform over gRPC and forks (subprocesses, the CLI): before
# grpc is imported below, keep its C core from printing INFO notes (fork_posix, GOAWAY)
# into the run's output. GRPC_VERBOSITY set by the user wins.
quiet_grpc_core()

from harness import options, recording, session  # noqa: E402  (after quiet_grpc_core)
from harness.context import E2EContext  # noqa: E402
from harness.run_report import write_run_report  # noqa: E402
from harness.world import World  # noqa: E402

STATE = pytest.StashKey[session.RunState]()


def pytest_addoption(parser: pytest.Parser) -> None:
    options.add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    options.register_markers(config)
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        config.stash[STATE] = session.attach(workerinput)
    elif config.option.collectonly or not options.targets_features(config):
        config.stash[STATE] = session.RunState()
    else:
        state = session.begin(options.launcher_config(config))
        config.stash[STATE] = state
        if config.pluginmanager.hasplugin("xdist"):
            config.pluginmanager.register(session.XdistHandoff(state), "hodei-e2e-xdist")


@pytest.fixture(scope="session")
def e2e_context(request: pytest.FixtureRequest) -> E2EContext:
    return request.config.stash[STATE].context_for_scenarios()


@pytest.fixture
def world(e2e_context: E2EContext, request: pytest.FixtureRequest) -> Iterator[World]:
    rec = recording.record_of(request.node)
    world = World(
        ctx=e2e_context,
        metrics=rec.setdefault("metrics", {}),
        job_ids=rec.setdefault("job_ids", []),
        job_times=rec.setdefault("job_times", []),
    )
    yield world
    world.close()


# optionalhook: pytest-bdd may be absent (hodei installed without [e2e]) and then
# pytest would refuse an unknown hook and fail every run in that environment.
@pytest.hookimpl(optionalhook=True)
def pytest_bdd_before_scenario(request: pytest.FixtureRequest, feature: Any, scenario: Any) -> None:
    recording.scenario_started(request.node, feature, scenario)


@pytest.hookimpl(optionalhook=True)
def pytest_bdd_before_step(request: pytest.FixtureRequest, step: Any, **_: Any) -> None:
    recording.step_started(request.node)


@pytest.hookimpl(optionalhook=True)
def pytest_bdd_after_step(request: pytest.FixtureRequest, step: Any, **_: Any) -> None:
    recording.step_ended(request.node, step)


@pytest.hookimpl(optionalhook=True)
def pytest_bdd_step_error(
    request: pytest.FixtureRequest, step: Any, exception: Exception, **_: Any
) -> None:
    recording.step_ended(request.node, step, exception)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    state = item.config.stash[STATE]
    recording.note_report(item, report, call, state.records_dir)
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(STATE, None)
    if state is None or not state.active:
        return
    if state.context is not None:
        state.context.close()
        state.context = None
    if state.is_xdist_worker:
        return
    # Nothing failed (an empty selection fails nothing either).
    passed = exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED)
    state.green = passed and not state.launch_error
    config = session.config
    state.keep_run_dir = options.keep_run_dir(config)
    try:
        write_run_report(
            state,
            options.launcher_config(config).name,
            options.faults(config),
            options.report_dir(config),
            options.report_lang(config),
        )
    except Exception:
        state.green = False  # keep the run directory: it is all there is to read
        state.notes.append("writing the report failed: " + traceback.format_exc(limit=3))


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is None or not state.active or state.is_xdist_worker:
        return
    for note in state.notes:
        terminalreporter.write_line(f"hodei e2e: {note}", yellow=True)
    if state.launch_error:
        terminalreporter.write_line(f"hodei e2e: {state.launch_error}", red=True)
    if state.run_dir is not None:
        # The report names log files and a database in it: say whether they are still there.
        if state.removes_run_dir:
            fate = "removed after the green run; --keep-run-dir keeps it"
        elif state.green:
            fate = "kept: --keep-run-dir"
        else:
            fate = "kept: the run failed"
        terminalreporter.write_line(f"hodei e2e run directory ({fate}): {state.run_dir}")
    if state.report_path is not None:
        terminalreporter.write_line(f"hodei e2e report: {state.report_path}", bold=True)


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is not None:
        session.end(state)
