"""`hodei`: the command line of the Hodei job platform.

The boundary of the CLI: arguments are parsed and validated here, every
HodeiError becomes one line on stderr (`hodei: error: ...`) and an exit code
(see hodei.exit_codes), an unexpected exception becomes one line that
suggests --debug, and Ctrl-C exits 130. No traceback reaches the user unless
--debug is given.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import traceback
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

from hodei import __version__, exit_codes
from hodei.errors import HodeiError

# The command modules (and grpc, protobuf, psycopg behind them) are imported inside
# main(), under its Ctrl-C and error handling: a Ctrl-C while they load must give
# exit 130, not an import traceback.

AsyncHandler = Callable[[Any, argparse.Namespace], Awaitable[int]]


class Interrupted(Exception):
    """Ctrl-C while an async command ran."""


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (usage goes to --help, not to every mistake)."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"hodei: error: {message} (see '{self.prog} --help')\n")
        raise SystemExit(exit_codes.USAGE)


def build_parser() -> argparse.ArgumentParser:
    from hodei.cli import events, jobs, platform, tokens, up
    from hodei.flags import add_setting_flags

    # Options accepted before or after the subcommand; SUPPRESS keeps a later
    # parser from resetting a value given earlier on the line.
    common = _Parser(add_help=False)
    add_setting_flags(common, "server.address", "client.token")  # --server, --token
    add_setting_flags(common, "tls.ca", "tls.client_cert", "tls.client_key", "tls.server_name")
    common.add_argument(
        "-o",
        "--output",
        choices=["table", "json"],
        default=argparse.SUPPRESS,
        help="tables for people (default) or json for scripts",
    )
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show tracebacks and debug logs",
    )
    parser = _Parser(
        prog="hodei",
        description="Hodei job platform: run shell jobs on remote workers.",
        epilog=exit_codes.EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"hodei {__version__}")
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=_Parser
    )
    up.add_parser(sub)
    platform.add_parsers(sub, common)
    jobs.add_parsers(sub, common)
    tokens.add_parsers(sub, common)
    events.add_parsers(sub, common)
    _add_plugin_commands(sub)
    return parser


#: Entry point group through which other packages add `hodei` subcommands; the e2e
#: harness registers `hodei e2e` there (installed with the [e2e] extra).
COMMANDS_GROUP = "hodei.commands"


def _add_plugin_commands(sub: argparse._SubParsersAction) -> None:
    """Subcommands registered by other packages. One that cannot load (its extra is not
    installed) still appears, and says what to install instead of failing obscurely."""
    from importlib.metadata import entry_points

    for entry in entry_points(group=COMMANDS_GROUP):
        try:
            add_parser = entry.load()
        except ImportError as exc:
            _add_unavailable_command(sub, entry.name, exc)
            continue
        add_parser(sub)


def _add_unavailable_command(sub: argparse._SubParsersAction, name: str, exc: Exception) -> None:
    missing = getattr(exc, "name", None) or str(exc)
    reason = (
        f"'hodei {name}' needs the e2e extra ({missing} is not installed): pip install 'hodei[e2e]'"
    )

    def unavailable(_args: argparse.Namespace) -> int:
        from hodei.errors import ConfigError

        raise ConfigError(reason)

    # No option prefix: whatever options the real command takes (`-n 2 --lang es`) land
    # in `rest`, so the user reads the install hint, not "unrecognized arguments".
    parser = sub.add_parser(
        name, help="(not installed: pip install 'hodei[e2e]')", prefix_chars="\x00"
    )
    parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    parser.set_defaults(sync_handler=unavailable)


async def _run_client_command(handler: AsyncHandler, args: argparse.Namespace) -> int:
    from hodei.cli.credentials import cli_token
    from hodei.client import NO_RETRY, HodeiClient, RetryPolicy, client_tls
    from hodei.flags import settings_from_args
    from hodei.tracing import CLI_SERVICE, setup_tracing

    settings = settings_from_args(args)
    tls = client_tls(settings.tls)
    # A command's spans are exported at its exit: an unreachable collector may delay it
    # by this much, not by the exporters' 10 s.
    flush_spans = setup_tracing(settings.tracing, CLI_SERVICE, export_timeout_s=1.5)
    task = asyncio.current_task()
    interrupted = False

    def on_sigint() -> None:
        nonlocal interrupted
        interrupted = True
        if task is not None:
            task.cancel()

    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, on_sigint)
    try:
        async with HodeiClient(
            settings.server.address,
            keepalive_time_ms=settings.server.keepalive_time_ms,
            keepalive_timeout_ms=settings.server.keepalive_timeout_ms,
            submit_retry=RetryPolicy(settings.client.submit_retry)
            if settings.client.submit_retry
            else NO_RETRY,
            tls=tls,
            token=cli_token(settings),
            tracing=settings.tracing.enabled,
        ) as client:
            return await handler(client, args)
    except asyncio.CancelledError:
        if interrupted:
            raise Interrupted from None
        raise
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        flush_spans()


def run(args: argparse.Namespace) -> int:
    sync_handler = getattr(args, "sync_handler", None)
    if sync_handler is not None:
        return int(sync_handler(args))
    return asyncio.run(_run_client_command(args.handler, args))


def main(argv: list[str] | None = None) -> int:
    try:
        code = _main(argv)
    except KeyboardInterrupt:
        # Ctrl-C while the command's modules still load, before _main's own handler.
        sys.stderr.write("hodei: interrupted\n")
        code = exit_codes.INTERRUPTED
    if argv is None:
        # Run as the program: a Ctrl-C arriving while the interpreter shuts down
        # must not turn the exit code we chose into "killed by SIGINT".
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    return code


def _main(argv: list[str] | None) -> int:
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    from hodei.logging_setup import quiet_grpc_core

    # Before build_parser(): the command modules import grpc, which reads it then.
    quiet_grpc_core(debug)
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exc:  # --help, --version, usage errors
            return int(exc.code or 0) if isinstance(exc.code, int) else exit_codes.USAGE
        args.output = getattr(args, "output", "table")
        debug = bool(getattr(args, "debug", False))
        from hodei.logging_setup import configure_logging

        # The CLI's own log is quiet (WARNING) unless --debug; `up`, `server` and
        # `worker` configure theirs from settings.
        if args.command not in ("up", "server", "worker"):
            configure_logging("DEBUG" if debug else "WARNING")
        return run(args)
    except HodeiError as err:
        _error(str(err) or type(err).__name__)
        return exit_codes.for_error(err)
    except (Interrupted, KeyboardInterrupt):
        sys.stderr.write("hodei: interrupted\n")
        return exit_codes.INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`hodei job logs X | head`): stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return exit_codes.BROKEN_PIPE
    except Exception as exc:  # the last line of defence: never a traceback by default
        if debug:
            traceback.print_exc()
        message = " ".join(str(exc).split())[:300]
        _error(f"unexpected {type(exc).__name__}: {message} (run with --debug for details)")
        return exit_codes.UNEXPECTED


def _error(message: str) -> None:
    sys.stderr.write(f"hodei: error: {' '.join(message.split())}\n")


if __name__ == "__main__":
    sys.exit(main())
