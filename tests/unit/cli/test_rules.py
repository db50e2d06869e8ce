"""CLI and client rules without I/O: argument validation, exit codes, the one
RpcError translation, address checks, redaction."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

import grpc
import pytest

from hodei import exit_codes
from hodei.cli.jobs import cancel_outcome, job_run_exit_code, parse_states, spec_from_args
from hodei.cli.main import build_parser
from hodei.cli.platform import redact
from hodei.client import JobView, check_address
from hodei.client.rpc_errors import translate
from hodei.domain.jobs import JobState
from hodei.errors import (
    FailedPrecondition,
    HodeiError,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from hodei.flags import settings_from_args
from hodei.server import __main__ as server_main
from hodei.worker import __main__ as worker_main


class StatusError(grpc.RpcError):
    """What grpc.aio raises: an RpcError carrying a code and details."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


@pytest.mark.parametrize(
    ("code", "details", "kind", "message"),
    [
        (grpc.StatusCode.NOT_FOUND, "job x not found", NotFound, "job x not found"),
        (
            grpc.StatusCode.INVALID_ARGUMENT,
            "command must\nnot be empty",
            InvalidArgument,
            "command must not be empty",
        ),
        (
            grpc.StatusCode.FAILED_PRECONDITION,
            "job cannot go from A to B",
            FailedPrecondition,
            "job cannot go from A to B",
        ),
        (
            grpc.StatusCode.UNAVAILABLE,
            "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:9: "
            "Failed to connect to remote host: Connection refused",
            Unavailable,
            "cannot reach the Hodei server at h:9 (Connection refused)",
        ),
        (
            grpc.StatusCode.UNAVAILABLE,
            "database unavailable",
            Unavailable,
            "the Hodei server at h:9 is unavailable: database unavailable",
        ),
        (
            grpc.StatusCode.DEADLINE_EXCEEDED,
            "Deadline Exceeded",
            Unavailable,
            "did not answer within 10 s",
        ),
        (
            grpc.StatusCode.INTERNAL,
            "internal error in GetJob; see the server log",
            HodeiError,
            "server error INTERNAL: internal error in GetJob",
        ),
    ],
)
def test_rpc_errors_are_translated_once_with_the_servers_message(
    code: grpc.StatusCode, details: str, kind: type[HodeiError], message: str
) -> None:
    err = translate(StatusError(code, details), "h:9", 10.0)
    assert type(err) is kind
    assert message in str(err)
    assert "\n" not in str(err)


@pytest.mark.parametrize(
    ("err", "code"),
    [
        (InvalidArgument("x"), 2),
        (Unavailable("x"), 3),
        (NotFound("x"), 4),
        (FailedPrecondition("x"), 5),
        (HodeiError("x"), 1),
    ],
)
def test_exit_code_for_each_error(err: HodeiError, code: int) -> None:
    assert exit_codes.for_error(err) == code


def _job(state: JobState, exit_code: int | None) -> JobView:
    return JobView(id="j", state=state, command=("x",), exit_code=exit_code)


@pytest.mark.parametrize(
    ("state", "exit_code", "expected"),
    [
        (JobState.SUCCEEDED, 0, 0),
        (JobState.FAILED, 7, 7),
        (JobState.FAILED, None, exit_codes.JOB_FAILED),
        (JobState.TIMED_OUT, 143, exit_codes.JOB_TIMED_OUT),
        (JobState.CANCELLED, 143, exit_codes.JOB_CANCELLED),
        (JobState.CANCELLED, None, exit_codes.JOB_CANCELLED),
    ],
)
def test_job_run_exit_code(state: JobState, exit_code: int | None, expected: int) -> None:
    assert job_run_exit_code(_job(state, exit_code)) == expected


def _spec(*argv: str):  # type: ignore[no-untyped-def]
    return spec_from_args(build_parser().parse_args(["job", "run", *argv]))


def test_job_run_arguments_become_a_validated_spec() -> None:
    spec = _spec(
        "--timeout",
        "2.5",
        "--env",
        "A=1",
        "--env",
        "B=x=y",
        "--workdir",
        "/tmp",
        "--name",
        "n",
        "--",
        "sh",
        "-c",
        "echo $A",
    )
    assert spec.command == ("sh", "-c", "echo $A")
    assert spec.env == {"A": "1", "B": "x=y"}
    assert (spec.timeout_seconds, spec.working_dir, spec.name) == (2.5, "/tmp", "n")
    assert _spec("--shell", "echo hi").command == ("/bin/sh", "-c", "echo hi")
    # Options after the command belong to the command.
    assert _spec("--", "ls", "--timeout", "3").command == ("ls", "--timeout", "3")
    # --selector (repeatable): where it may run; --label only tags it.
    chosen = _spec("--selector", "pool=docker", "--selector", "gpu=1", "--label", "x=y", "true")
    assert (chosen.selector, chosen.labels) == ({"pool": "docker", "gpu": "1"}, {"x": "y"})


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "command must not be empty"),
        (["--", ""], "command must not be empty"),
        (["--timeout", "-1", "--", "true"], "--timeout must be a positive"),
        (["--timeout", "nan", "--", "true"], "--timeout must be a positive"),
        (["--env", "NOEQUALS", "--", "true"], "invalid --env 'NOEQUALS'"),
        (["--selector", "pool", "--", "true"], "invalid --selector 'pool'"),
        (["--shell", "  "], "--shell script must not be empty"),
        (["--", "a\x00b"], "NUL"),
    ],
)
def test_bad_job_input_is_invalid_argument(argv: list[str], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        _spec(*argv)


@pytest.mark.parametrize("subcommand", ["run", "submit"])
def test_an_empty_command_names_the_subcommand_given(subcommand: str) -> None:
    args = build_parser().parse_args(["job", subcommand])
    with pytest.raises(InvalidArgument, match=f"hodei job {subcommand} -- CMD ARGS"):
        spec_from_args(args)


def test_cancel_says_what_happened() -> None:
    held = JobView(id="j1", state=JobState.RUNNING, command=("sleep", "9"))
    assert cancel_outcome(held, force=True) == (
        "job j1: cancel requested; it was RUNNING and its worker is stopping it "
        "(SIGKILL at once); `hodei job get j1` shows when it is CANCELLED"
    )
    assert "SIGTERM, then SIGKILL" in cancel_outcome(held, force=False)
    prefetched = JobView(id="j3", state=JobState.ASSIGNED, command=("sleep", "9"))
    assert "its worker drops it, or stops its process if it has started" in (
        cancel_outcome(prefetched, force=False)
    )
    pending = JobView(id="j2", state=JobState.CANCELLED, command=("true",))
    assert cancel_outcome(pending, force=False) == "job j2: CANCELLED"


def test_states_parse_case_insensitively_and_comma_separated() -> None:
    assert parse_states(["running,Pending", "SUCCEEDED"]) == [
        JobState.RUNNING,
        JobState.PENDING,
        JobState.SUCCEEDED,
    ]
    with pytest.raises(InvalidArgument, match="unknown job state 'DONE'"):
        parse_states(["done"])


@pytest.mark.parametrize("address", ["localhost", "h:", ":50051", "h:0", "h:70000", "h:x"])
def test_bad_server_addresses_are_refused(address: str) -> None:
    with pytest.raises(InvalidArgument, match="expected HOST:PORT"):
        check_address(address)


def test_good_server_address() -> None:
    assert check_address(" 127.0.0.1:50051 ") == "127.0.0.1:50051"
    assert check_address("[::1]:50051") == "[::1]:50051"


def test_global_options_go_before_or_after_the_subcommand() -> None:
    parser = build_parser()
    before = parser.parse_args(["--server", "a:1", "-o", "json", "job", "list"])
    after = parser.parse_args(["job", "list", "--server", "a:1", "--output", "json"])
    for args in (before, after):
        assert (settings_from_args(args).server.address, args.output) == ("a:1", "json")


@pytest.mark.parametrize(
    ("command", "module_parser", "argv"),
    [
        (
            "server",
            server_main.build_parser,
            ["--port", "7001", "--no-dispatcher", "--log-level", "debug", "--data-dir", "/d"],
        ),
        (
            "worker",
            worker_main.build_parser,
            ["--server", "h:1", "--slots", "3", "--name", "w", "--log-file", "/l.log"],
        ),
    ],
)
def test_hodei_and_python_m_give_the_same_settings_from_the_same_flags(
    command: str,
    module_parser: Callable[[], argparse.ArgumentParser],
    argv: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [n for n in os.environ if n.startswith("HODEI_")]:
        monkeypatch.delenv(name)
    via_cli = settings_from_args(build_parser().parse_args([command, *argv]))
    via_module = settings_from_args(module_parser().parse_args(argv))
    assert via_cli == via_module
    if command == "server":
        assert (via_cli.server.port, via_cli.dispatcher.enabled) == (7001, False)
        assert (via_cli.logging.level, str(via_cli.database.data_dir)) == ("DEBUG", "/d")
    else:
        assert (via_cli.server.address, via_cli.worker.slots) == ("h:1", 3)
        assert (via_cli.worker.name, str(via_cli.logging.file)) == ("w", "/l.log")


def test_a_flag_not_given_leaves_the_setting_to_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HODEI_SLOTS", "5")
    assert settings_from_args(build_parser().parse_args(["worker"])).worker.slots == 5
    given = build_parser().parse_args(["worker", "--slots", "2"])
    assert settings_from_args(given).worker.slots == 2


def test_passwords_are_redacted() -> None:
    assert redact("postgresql://u:secret@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redact("postgresql://postgres:@/postgres?host=/tmp/x") == (
        "postgresql://postgres:@/postgres?host=/tmp/x"
    )
