"""`hodei job ...`: run, submit, get, list, cancel, logs."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Sequence

from hodei import exit_codes
from hodei.cli import output
from hodei.client import HodeiClient, JobView, LogLineView
from hodei.domain.idempotency import validate_key
from hodei.domain.jobs import JobSpec, JobState, validate_spec
from hodei.errors import HodeiError, InvalidArgument

# GetLogs page size (the server's cap).
_LOG_PAGE = 10_000


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    job = sub.add_parser("job", help="run and inspect jobs", parents=[common])
    jsub = job.add_subparsers(dest="job_command", metavar="COMMAND", required=True)

    def spec_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--timeout", type=float, metavar="S", help="seconds before TIMED_OUT")
        p.add_argument("--env", action="append", default=[], metavar="K=V", help="repeatable")
        p.add_argument(
            "--secret-env",
            action="append",
            default=[],
            metavar="K[=V]",
            help="a secret env variable: never shown, logged or stored in clear; K alone "
            "takes the value of K in this shell's environment, out of argv (repeatable)",
        )
        p.add_argument("--workdir", default="", metavar="DIR", help="working directory")
        p.add_argument("--name", default="", help="a name shown in listings")
        p.add_argument("--label", action="append", default=[], metavar="K=V", help="repeatable")
        p.add_argument(
            "--selector",
            action="append",
            default=[],
            metavar="K=V",
            help="run only on a worker with this label; with a providers file the server "
            "starts one on a provider tagged so (repeatable)",
        )
        p.add_argument("--max-attempts", type=int, default=0, metavar="N")
        p.add_argument(
            "--correlation-id",
            default="",
            metavar="ID",
            help="your id for this job (an order number...): every log line and span "
            "about it carries it (default: the job id)",
        )
        p.add_argument(
            "--idempotency-key",
            metavar="KEY",
            help="names this submission: run again with the same KEY and spec, it answers "
            "the job already queued (default: a new key, reused by this run's retries)",
        )

    run = jsub.add_parser(
        "run", parents=[common], help="queue a job, follow its logs, exit with its exit code"
    )
    spec_options(run)
    run.add_argument("--shell", metavar="SCRIPT", help="run SCRIPT with /bin/sh -c")
    run.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD ARGS")
    run.set_defaults(handler=job_run)

    submit = jsub.add_parser("submit", parents=[common], help="queue a job and print its id")
    spec_options(submit)
    submit.add_argument("--shell", metavar="SCRIPT", help="run SCRIPT with /bin/sh -c")
    submit.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD ARGS")
    submit.set_defaults(handler=job_submit)

    get = jsub.add_parser("get", parents=[common], help="show one job")
    get.add_argument("job_id", metavar="ID")
    get.set_defaults(handler=job_get)

    lst = jsub.add_parser("list", parents=[common], help="list recent jobs")
    lst.add_argument(
        "--state",
        action="append",
        default=[],
        metavar="S",
        help="PENDING, RUNNING, SUCCEEDED... (repeatable or comma-separated)",
    )
    lst.add_argument("--limit", type=int, default=50, metavar="N", help="at most N (1-1000)")
    lst.add_argument("--label", action="append", default=[], metavar="K=V")
    lst.set_defaults(handler=job_list)

    cancel = jsub.add_parser("cancel", parents=[common], help="cancel a job")
    cancel.add_argument("job_id", metavar="ID")
    cancel.add_argument("--force", action="store_true", help="SIGKILL at once")
    cancel.add_argument("--reason", default="cancelled from the hodei CLI")
    cancel.set_defaults(handler=job_cancel)

    logs = jsub.add_parser("logs", parents=[common], help="print a job's output")
    logs.add_argument("job_id", metavar="ID")
    logs.add_argument("-f", "--follow", action="store_true", help="follow until the job ends")
    logs.add_argument("--tail", type=int, default=0, metavar="N", help="only the last N lines")
    logs.set_defaults(handler=job_logs)


# ---- input ----------------------------------------------------------------------------


def parse_pairs(values: Sequence[str], option: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidArgument(f"invalid {option} {item!r}: expected NAME=VALUE")
        pairs[key] = value
    return pairs


def parse_secret_env(values: Sequence[str]) -> dict[str, str]:
    """--secret-env NAME=VALUE, or NAME: the value of NAME in the CLI's own environment,
    so that it appears neither in argv (ps) nor in the shell's history. Messages name
    the variable, never its value."""
    secrets: dict[str, str] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not name:
            raise InvalidArgument("invalid --secret-env: expected NAME=VALUE or NAME")
        if not sep:
            # Entry-point boundary: the user names a variable of this shell on purpose.
            found = os.environ.get(name)
            if found is None:
                raise InvalidArgument(
                    f"--secret-env {name}: {name} is not set in this shell's environment"
                )
            value = found
        secrets[name] = value
    return secrets


def command_from_args(args: argparse.Namespace) -> list[str]:
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if args.shell is not None:
        if command:
            raise InvalidArgument("give either --shell SCRIPT or -- CMD ARGS, not both")
        if not args.shell.strip():
            raise InvalidArgument("--shell script must not be empty")
        return ["/bin/sh", "-c", args.shell]
    if not command:
        # Name the subcommand given (`job submit` or `job run`), not always `run`.
        raise InvalidArgument(
            f"command must not be empty: hodei job {args.job_command} -- CMD ARGS..., "
            f"or hodei job {args.job_command} --shell 'SCRIPT'"
        )
    return command


def spec_from_args(args: argparse.Namespace) -> JobSpec:
    """Validated here with the domain's own rules, so bad input fails without a server."""
    if args.timeout is not None and (args.timeout != args.timeout or args.timeout <= 0):
        raise InvalidArgument(f"--timeout must be a positive number of seconds, not {args.timeout}")
    if args.max_attempts < 0:
        raise InvalidArgument("--max-attempts must be at least 1")
    return validate_spec(
        command_from_args(args),
        env=parse_pairs(args.env, "--env"),
        working_dir=args.workdir,
        timeout_seconds=args.timeout,
        max_attempts=args.max_attempts or None,
        name=args.name,
        labels=parse_pairs(args.label, "--label"),
        secret_env=parse_secret_env(args.secret_env),
        selector=parse_pairs(args.selector, "--selector"),
    )


def key_from_args(args: argparse.Namespace) -> str | None:
    """--idempotency-key checked here, so a bad key fails without a server; None lets
    the client make one for this invocation."""
    key: str | None = args.idempotency_key
    if key is None:
        return None
    if key == "":
        raise InvalidArgument("--idempotency-key must not be empty")
    return validate_key(key)


async def _queue(client: HodeiClient, args: argparse.Namespace) -> JobView:
    spec = spec_from_args(args)
    key = key_from_args(args)
    return await client.queue_job(
        spec.command,
        env=spec.env,
        working_dir=spec.working_dir,
        timeout_seconds=spec.timeout_seconds,
        # 0 lets the server apply its default when the user gave none.
        max_attempts=args.max_attempts,
        name=spec.name,
        labels=spec.labels,
        idempotency_key=key,
        secret_env=spec.secret_env,
        correlation_id=args.correlation_id,
        selector=spec.selector,
    )


# ---- output of log lines -----------------------------------------------------------------


def write_lines(lines: Sequence[LogLineView], as_json: bool) -> None:
    """Write a batch in order, then flush: the user (or a harness reading the pipe)
    follows live, and a burst of lines costs one flush, not one per line."""
    if as_json:
        sys.stdout.write("".join(json.dumps({"type": "log", **x.to_dict()}) + "\n" for x in lines))
        sys.stdout.flush()
        return
    previous = None
    for line in lines:
        stream = sys.stderr if line.is_stderr else sys.stdout
        if previous is not None and stream is not previous:
            previous.flush()  # keeps stdout/stderr interleaving as the job produced it
        stream.write(line.line + "\n")
        previous = stream
    sys.stdout.flush()
    sys.stderr.flush()


async def follow(client: HodeiClient, job_id: str, as_json: bool, tail_lines: int = 0) -> None:
    async for batch in client.subscribe_log_batches(job_id, tail_lines=tail_lines):
        write_lines(batch, as_json)


def job_run_exit_code(job: JobView) -> int:
    if job.exit_code is not None and job.state in (JobState.SUCCEEDED, JobState.FAILED):
        return job.exit_code
    if job.state == JobState.SUCCEEDED:
        return exit_codes.OK
    if job.state == JobState.TIMED_OUT:
        return exit_codes.JOB_TIMED_OUT
    if job.state == JobState.CANCELLED:
        return exit_codes.JOB_CANCELLED
    return exit_codes.JOB_FAILED


def _ending_note(job: JobView) -> str | None:
    """One stderr line when the ending is not simply the command's exit code."""
    if job.state in (JobState.SUCCEEDED, JobState.FAILED) and job.exit_code is not None:
        return None
    detail = f": {job.error}" if job.error else ""
    return f"hodei: job {job.id} {job.state.value}{detail}"


# ---- commands ---------------------------------------------------------------------------


async def job_run(client: HodeiClient, args: argparse.Namespace) -> int:
    job = await _queue(client, args)
    try:
        await follow(client, job.id, args.output == "json")
        final = await client.get_job(job.id)
        # The stream ends with the job; poll briefly in case the state lags it.
        for _ in range(50):
            if final.is_final:
                break
            await asyncio.sleep(0.1)
            final = await client.get_job(job.id)
    except asyncio.CancelledError:
        # Ctrl-C: the job was started in the foreground, so it stops with us.
        with contextlib.suppress(HodeiError, TimeoutError):
            await asyncio.wait_for(
                client.cancel_job(job.id, reason="interrupted in hodei job run"), 3.0
            )
        print(f"hodei: job {job.id} cancelled", file=sys.stderr)
        raise
    if args.output == "json":
        sys.stdout.write(json.dumps({"type": "job", "job": final.to_dict()}) + "\n")
    elif (note := _ending_note(final)) is not None:
        print(note, file=sys.stderr)
    return job_run_exit_code(final)


async def job_submit(client: HodeiClient, args: argparse.Namespace) -> int:
    job = await _queue(client, args)
    if args.output == "json":
        output.print_json(job.to_dict())
    else:
        print(job.id)
    return exit_codes.OK


async def job_get(client: HodeiClient, args: argparse.Namespace) -> int:
    job = await client.get_job(args.job_id)
    if args.output == "json":
        output.print_json(job.to_dict())
    else:
        output.job_fields(job)
    return exit_codes.OK


def parse_states(values: Sequence[str]) -> list[JobState]:
    states: list[JobState] = []
    for value in values:
        for name in filter(None, (v.strip().upper() for v in value.split(","))):
            try:
                states.append(JobState(name))
            except ValueError:
                known = ", ".join(s.value for s in JobState)
                raise InvalidArgument(f"unknown job state {name!r}; one of {known}") from None
    return states


async def job_list(client: HodeiClient, args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= 1000:
        raise InvalidArgument(f"--limit must be between 1 and 1000, not {args.limit}")
    states = parse_states(args.state)
    jobs = await client.list_jobs(states, args.limit, parse_pairs(args.label, "--label"))
    if args.output == "json":
        output.print_json([j.to_dict() for j in jobs])
    else:
        output.jobs_table(jobs)
    return exit_codes.OK


async def job_cancel(client: HodeiClient, args: argparse.Namespace) -> int:
    job = await client.cancel_job(args.job_id, force=args.force, reason=args.reason)
    if args.output == "json":
        output.print_json(job.to_dict())
    else:
        print(cancel_outcome(job, args.force))
    return exit_codes.OK


def cancel_outcome(job: JobView, force: bool) -> str:
    """What the cancel did. A job a worker holds is still ASSIGNED/RUNNING in the
    answer (it becomes CANCELLED when the worker reports), so its state alone would
    read as if nothing had happened."""
    if job.is_final:
        return f"job {job.id}: {job.state.value}"
    how = "SIGKILL at once" if force else "SIGTERM, then SIGKILL after a grace period"
    if job.state == JobState.ASSIGNED:
        # Held by a worker, maybe not started at all (prefetched): no process to stop.
        doing = f"its worker drops it, or stops its process if it has started ({how})"
    else:
        doing = f"its worker is stopping it ({how})"
    return (
        f"job {job.id}: cancel requested; it was {job.state.value} and {doing}; "
        f"`hodei job get {job.id}` shows when it is CANCELLED"
    )


async def job_logs(client: HodeiClient, args: argparse.Namespace) -> int:
    if args.tail < 0:
        raise InvalidArgument(f"--tail must be 0 or more, not {args.tail}")
    as_json = args.output == "json"
    if args.follow:
        await follow(client, args.job_id, as_json, args.tail)
        return exit_codes.OK
    await client.get_job(args.job_id)  # an unknown id is NOT_FOUND, not an empty log
    lines: list[LogLineView] = []
    after = 0
    while True:
        page = await client.get_logs(args.job_id, after_sequence=after, limit=_LOG_PAGE)
        if args.tail:
            lines = (lines + page.lines)[-args.tail :]
        else:
            write_lines(page.lines, as_json)
        if page.complete or not page.lines:
            break
        after = page.lines[-1].sequence
    write_lines(lines, as_json)
    return exit_codes.OK
