"""`python -m hodei.worker --server HOST:PORT [--slots N] [--name NAME]`."""

from __future__ import annotations

import argparse
import sys

from hodei.errors import HodeiError
from hodei.logging_setup import configure_logging
from hodei.settings import load_settings
from hodei.worker.service import run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hodei.worker", description="Run a Hodei worker."
    )
    parser.add_argument("--server", help="server address HOST:PORT (HODEI_SERVER_ADDRESS)")
    parser.add_argument("--slots", type=int, help="jobs run at once (HODEI_SLOTS)")
    parser.add_argument("--name", help="worker name shown in `hodei workers`")
    parser.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument("--log-format", choices=["text", "json"])
    parser.add_argument("--log-file", help="write the log here instead of stderr")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(
            server_address=args.server,
            slots=args.slots,
            worker_name=args.name,
            log_level=args.log_level,
            log_format=args.log_format,
            log_file=args.log_file,
        )
    except HodeiError as err:
        print(f"hodei worker: {err}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format, settings.log_file)
    return run(settings)


if __name__ == "__main__":
    sys.exit(main())
