"""`python -m hodei.server [--port N] [--database-url URL] ...`: run one server until
SIGINT/SIGTERM, then shut down gracefully."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from hodei.errors import HodeiError
from hodei.logging_setup import configure_logging
from hodei.settings import load_settings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m hodei.server", description=__doc__)
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--database-url")
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--no-dispatcher", action="store_true", help="fault simulation only")
    parser.add_argument("--no-outbox-relay", action="store_true", help="fault simulation only")
    parser.add_argument("--log-level")
    parser.add_argument("--log-format", choices=["text", "json"])
    parser.add_argument("--log-file", type=Path)
    return parser.parse_args(argv)


async def serve(argv: list[str] | None = None) -> None:
    from hodei.server.app import ServerApp

    args = parse_args(argv)
    settings = load_settings(
        host=args.host,
        port=args.port,
        database_url=args.database_url,
        data_dir=args.data_dir,
        dispatcher_enabled=False if args.no_dispatcher else None,
        outbox_relay_enabled=False if args.no_outbox_relay else None,
        log_level=args.log_level,
        log_format=args.log_format,
        log_file=args.log_file,
    )
    configure_logging(settings.log_level, settings.log_format, settings.log_file)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await ServerApp(settings).run_until(stop)


def main(argv: list[str] | None = None) -> int:
    import psycopg

    try:
        asyncio.run(serve(argv))
    except HodeiError as err:
        print(f"hodei server: {err}", file=sys.stderr)
        return 2
    except psycopg.OperationalError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        print(f"hodei server: cannot use the database: {first}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
