"""`python -m hodei.worker --server HOST:PORT [--slots N] [--name NAME]`: the same
code as `hodei worker` (flags from hodei.worker.command.WORKER_OPTIONS)."""

from __future__ import annotations

import argparse
import sys

from hodei.flags import add_setting_flags, run_with_flags
from hodei.settings import Settings
from hodei.worker.command import WORKER_OPTIONS


def run_worker(settings: Settings) -> int:
    """Run a worker until SIGINT/SIGTERM; the exit code (2 and one line when its TLS
    files are wrong, before it starts)."""
    from hodei import exit_codes
    from hodei.errors import HodeiError
    from hodei.logging_setup import configure_logging
    from hodei.tls import client_tls
    from hodei.tracing import WORKER_SERVICE, setup_tracing
    from hodei.worker.service import run

    try:
        client_tls(settings.tls)
    except HodeiError as err:
        print(f"hodei worker: error: {err}", file=sys.stderr)
        return exit_codes.for_error(err)
    configure_logging(settings.logging.level, settings.logging.format, settings.logging.file)
    flush_spans = setup_tracing(settings.tracing, WORKER_SERVICE)
    try:
        return run(settings)
    finally:
        flush_spans()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m hodei.worker", description="Run a Hodei worker."
    )
    add_setting_flags(parser, *WORKER_OPTIONS)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_with_flags("hodei worker", build_parser(), run_worker, argv)


if __name__ == "__main__":
    sys.exit(main())
