"""`python -m hodei.server [--port N] [--database-url URL] ...`: run one server until
SIGINT/SIGTERM, then shut down gracefully. The same code as `hodei server`."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from hodei.errors import HodeiError, first_line
from hodei.flags import add_setting_flags, run_with_flags
from hodei.settings import Settings

#: Settings the server takes as flags (hodei.flags builds them).
SERVER_OPTIONS = (
    "server.host",
    "server.port",
    "database.url",
    "database.data_dir",
    "dispatcher.enabled",
    "server.outbox_relay_enabled",
    "broker.transport",
    "broker.nats_url",
    "auth.mode",
    "logging.level",
    "logging.format",
    "logging.file",
    "tls.cert",
    "tls.key",
    "tls.client_ca",
    "metrics.enabled",
    "metrics.port",
    "scaling.providers_file",
)


async def serve(settings: Settings) -> None:
    from hodei.logging_setup import configure_logging
    from hodei.server.app import ServerApp

    configure_logging(settings.logging.level, settings.logging.format, settings.logging.file)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await ServerApp(settings).run_until(stop)


def run_server(settings: Settings) -> int:
    """Serve until SIGINT/SIGTERM; the exit code (with one line when it cannot start:
    3 when the database cannot be reached, 2 for a bad setting, as `hodei` exits)."""
    import psycopg

    from hodei import exit_codes
    from hodei.tracing import SERVER_SERVICE, setup_tracing

    flush_spans = setup_tracing(settings.tracing, SERVER_SERVICE)
    try:
        asyncio.run(serve(settings))
    except HodeiError as err:
        print(f"hodei server: error: {err}", file=sys.stderr)
        return exit_codes.for_error(err)
    except psycopg.OperationalError as err:  # lost after start-up
        first = first_line(err)
        print(f"hodei server: error: the database went away: {first}", file=sys.stderr)
        return exit_codes.UNREACHABLE
    except KeyboardInterrupt:
        return 130
    finally:
        flush_spans()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m hodei.server", description=__doc__)
    add_setting_flags(parser, *SERVER_OPTIONS)
    return parser


def main(argv: list[str] | None = None) -> int:
    from hodei.logging_setup import quiet_grpc_core

    quiet_grpc_core()  # before ServerApp's modules import grpc
    return run_with_flags("hodei server", build_parser(), run_server, argv)


if __name__ == "__main__":
    sys.exit(main())
