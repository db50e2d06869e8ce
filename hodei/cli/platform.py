"""`hodei workers`, `queue`, `version`, `db migrate`, `db prune`, `db reseal-secrets`,
and the `server` / `worker` entry points (which delegate to their own packages)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

from hodei import __version__, exit_codes
from hodei.cli import output
from hodei.client import HodeiClient
from hodei.errors import (
    ConfigError,
    FailedPrecondition,
    HodeiError,
    InvalidArgument,
    Unavailable,
    first_line,
)
from hodei.flags import add_setting_flags, settings_from_args
from hodei.redaction import redact

T = TypeVar("T")

#: The retention settings `hodei db prune` takes as flags (an age of 0 keeps a kind).
PRUNE_OPTIONS = (
    "retention.jobs_age",
    "retention.outbox_age",
    "retention.workers_age",
    "retention.registrations_age",
    "retention.batch_size",
)


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    workers = sub.add_parser("workers", parents=[common], help="list workers")
    workers.add_argument("--all", action="store_true", help="include LOST and TERMINATED")
    workers.set_defaults(handler=show_workers)

    queue = sub.add_parser("queue", parents=[common], help="queue depth and queued jobs")
    queue.add_argument("--limit", type=int, default=20, metavar="N")
    queue.set_defaults(handler=show_queue)

    providers = sub.add_parser(
        "providers",
        parents=[common],
        help="providers of workers on demand: health and workers each runs",
    )
    providers.set_defaults(handler=show_providers)

    version = sub.add_parser("version", parents=[common], help="client and server versions")
    version.set_defaults(handler=show_version)

    db = sub.add_parser("db", help="database administration")
    dsub = db.add_subparsers(dest="db_command", metavar="COMMAND", required=True)
    migrate = dsub.add_parser("migrate", parents=[common], help="apply pending migrations")
    add_setting_flags(migrate, "database.url", "database.data_dir")
    migrate.set_defaults(sync_handler=db_migrate)
    prune = dsub.add_parser(
        "prune",
        parents=[common],
        help="delete finished jobs, old events and gone workers now (see README: What is kept)",
    )
    prune.add_argument(
        "--dry-run", action="store_true", help="count what would be deleted; delete nothing"
    )
    add_setting_flags(prune, "database.url", "database.data_dir", *PRUNE_OPTIONS)
    prune.set_defaults(sync_handler=db_prune)
    reseal = dsub.add_parser(
        "reseal-secrets",
        parents=[common],
        help="re-encrypt every stored secret env under the current HODEI_SECRET_KEY "
        "(the last step of a key rotation; the keys come from the environment only)",
    )
    reseal.add_argument(
        "--dry-run", action="store_true", help="count what would be resealed; write nothing"
    )
    add_setting_flags(reseal, "database.url", "database.data_dir")
    reseal.set_defaults(sync_handler=db_reseal_secrets)

    from hodei.server.__main__ import SERVER_OPTIONS
    from hodei.worker.command import WORKER_OPTIONS

    server = sub.add_parser("server", help="run a Hodei server in the foreground")
    add_setting_flags(server, *SERVER_OPTIONS)
    server.set_defaults(sync_handler=run_server)

    worker = sub.add_parser("worker", help="run a Hodei worker in the foreground")
    add_setting_flags(worker, *WORKER_OPTIONS)
    worker.set_defaults(sync_handler=run_worker)


def run_server(args: argparse.Namespace) -> int:
    from hodei.server.__main__ import run_server as serve

    return serve(settings_from_args(args))


def run_worker(args: argparse.Namespace) -> int:
    from hodei.worker.__main__ import run_worker as work

    return work(settings_from_args(args))


def _on_database(url: str, doing: str, work: Coroutine[Any, Any, T]) -> T:
    """Run a `hodei db` command's work; a database error is one line naming what it was
    doing and where ("cannot prune the database at postgresql://...: ..."), the URL's
    password redacted."""
    import psycopg

    try:
        return asyncio.run(work)
    except psycopg.Error as exc:
        raise Unavailable(f"cannot {doing} at {redact(url)}: {first_line(exc)}") from None


def db_migrate(args: argparse.Namespace) -> int:
    from hodei.db.embedded import resolve_database_url
    from hodei.db.migrate import latest_version, migrate

    settings = settings_from_args(args)
    url = resolve_database_url(settings)
    applied = _on_database(url, "migrate the database", migrate(url))
    version = latest_version()
    if args.output == "json":
        output.print_json(
            {
                "applied": [{"version": m.version, "name": m.name} for m in applied],
                "schema_version": version,
            }
        )
    elif applied:
        for m in applied:
            print(f"applied {m.version:04d}_{m.name}")
        print(f"database at schema version {version}")
    else:
        print(f"database already at schema version {version}")
    return exit_codes.OK


def db_prune(args: argparse.Namespace) -> int:
    from hodei.db import retention
    from hodei.db.embedded import resolve_database_url
    from hodei.durations import human_age

    settings = settings_from_args(args)
    url = resolve_database_url(settings)

    async def run() -> retention.PruneReport:
        async with await retention.connect(url) as conn:
            return await retention.prune(
                conn,
                settings.retention,
                dry_run=args.dry_run,
                ages=retention.other_ages(settings),
            )

    report = _on_database(url, "prune the database", run())
    if args.output == "json":
        output.print_json({"dry_run": report.dry_run, "kinds": [k.to_dict() for k in report.kinds]})
        return exit_codes.OK
    rows = []
    for result in report.kinds:
        kept = result.older_than <= 0
        related = ", ".join(f"{n} {c.replace('_', ' ')}" for c, n in result.related.items())
        rows.append(
            [
                result.kind.title,
                "kept" if kept else human_age(result.older_than),
                "-" if kept else f"{result.deleted}" + (f" ({related})" if related else ""),
            ]
        )
    verb = "WOULD DELETE" if report.dry_run else "DELETED"
    output.print_table(["KIND", "OLDER THAN", verb], rows)
    if report.dry_run:
        print("dry run: nothing was deleted")
    return exit_codes.OK


def db_reseal_secrets(args: argparse.Namespace) -> int:
    from hodei.db import retention
    from hodei.db.embedded import resolve_database_url
    from hodei.server.reseal import ResealReport, reseal_secrets
    from hodei.server.secret_box import SecretBox

    settings = settings_from_args(args)
    box = SecretBox(settings.server.secret_key, settings.server.previous_secret_key_list)
    if not box.enabled:  # a setting missing, as an invalid one is: exit code 2
        raise ConfigError("reseal-secrets needs HODEI_SECRET_KEY: the key to encrypt with")
    previous = len(settings.server.previous_secret_key_list)
    url = resolve_database_url(settings)

    async def run() -> ResealReport:
        async with await retention.connect(url) as conn:
            return await reseal_secrets(conn, box, dry_run=args.dry_run)

    report = _on_database(url, "reseal in the database", run())
    if args.output == "json":
        output.print_json({**report.to_dict(), "previous_keys": previous})
    else:
        verb = "would reseal" if report.dry_run else "resealed"
        # The keys it used, counted: an empty or misspelt variable shows here.
        print(
            f"{verb} {report.resealed} job(s) under the current key; "
            f"{report.current} already under it (keys: HODEI_SECRET_KEY and "
            f"{previous} from HODEI_PREVIOUS_SECRET_KEYS)"
        )
    if report.unreadable:
        shown = ", ".join(str(job_id) for job_id in report.unreadable[:10])
        more = len(report.unreadable) - 10
        raise FailedPrecondition(
            f"{len(report.unreadable)} job(s) hold a secret env that neither HODEI_SECRET_KEY "
            f"nor HODEI_PREVIOUS_SECRET_KEYS opens, left as they are: {shown}"
            + (f" and {more} more" if more > 0 else "")
        )
    return exit_codes.OK


async def show_workers(client: HodeiClient, args: argparse.Namespace) -> int:
    workers = await client.list_workers(include_gone=args.all)
    if args.output == "json":
        output.print_json([w.to_dict() for w in workers])
    else:
        output.workers_table(workers)
    return exit_codes.OK


async def show_queue(client: HodeiClient, args: argparse.Namespace) -> int:
    if not 0 <= args.limit <= 1000:
        raise InvalidArgument(f"--limit must be between 0 and 1000, not {args.limit}")
    queue = await client.get_queue(args.limit)
    if args.output == "json":
        output.print_json(queue.to_dict())
    else:
        output.queue_block(queue)
    return exit_codes.OK


async def show_providers(client: HodeiClient, args: argparse.Namespace) -> int:
    providers = await client.list_providers()
    if args.output == "json":
        output.print_json([p.to_dict() for p in providers])
    elif not providers:
        print("no providers: start the server with a providers file (HODEI_PROVIDERS_FILE)")
    else:
        output.providers_table(providers)
    return exit_codes.OK


async def show_version(client: HodeiClient, args: argparse.Namespace) -> int:
    """The client's version always; the server's when it answers (else a note on stderr)."""
    try:
        info = await client.server_info()
    except HodeiError as err:
        if args.output == "json":
            output.print_json({"client_version": __version__, "server": None, "error": str(err)})
        else:
            print(f"client version: {__version__}")
        print(f"hodei: warning: {err}", file=sys.stderr)
        return exit_codes.OK
    if args.output == "json":
        output.print_json({"client_version": __version__, "server": info.to_dict()})
    else:
        output.print_fields(
            [
                ("client version", __version__),
                ("server", client.address),
                *output.server_fields(info),
            ]
        )
    return exit_codes.OK
