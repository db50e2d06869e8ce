"""`hodei token create | list | revoke`: API tokens, straight in the database.

Like `hodei db migrate`, these need only the database URL (HODEI_DATABASE_URL, or the
embedded PostgreSQL of --data-dir), never a running server or a token: that is how the
first token of a fresh deployment is made. The token's text is printed once, by create.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

import psycopg
from psycopg.rows import dict_row

from hodei import exit_codes
from hodei.cli import output
from hodei.db.connector import PsycopgTx
from hodei.domain.auth import check_role, parse_expiry
from hodei.errors import Unavailable, first_line
from hodei.flags import add_setting_flags, settings_from_args
from hodei.redaction import redact
from hodei.server.tokens import TokenInfo, create_token, list_tokens, revoke_token

T = TypeVar("T")


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    token = sub.add_parser("token", help="API tokens: create, list, revoke (needs the database)")
    tsub = token.add_subparsers(dest="token_command", metavar="COMMAND", required=True)
    create = tsub.add_parser("create", parents=[common], help="create a token and print it (once)")
    create.add_argument("--name", required=True, help="a unique name (1-100 characters)")
    create.add_argument(
        "--role",
        required=True,
        choices=["worker", "client", "admin"],
        help="worker: the worker service only; client: submit, and read and cancel its own "
        "jobs, list workers and the queue; admin: everything",
    )
    create.add_argument("--expires", metavar="AGE", help="e.g. 12h, 30d, 1w (default: never)")
    create.set_defaults(sync_handler=token_create)
    listing = tsub.add_parser("list", parents=[common], help="tokens, their role and last use")
    listing.set_defaults(sync_handler=token_list)
    revoke = tsub.add_parser(
        "revoke",
        parents=[common],
        help="revoke a token by name or id (the server stops "
        "accepting it within HODEI_AUTH_CACHE_SECONDS)",
    )
    revoke.add_argument("ref", metavar="NAME", help="the token's name or id")
    revoke.set_defaults(sync_handler=token_revoke)
    for parser in (create, listing, revoke):
        add_setting_flags(parser, "database.url", "database.data_dir")


def _in_database(args: argparse.Namespace, work: Callable[[PsycopgTx], Awaitable[T]]) -> T:
    from hodei.db.embedded import resolve_database_url
    from hodei.db.migrate import migrate

    url = resolve_database_url(settings_from_args(args))

    async def run() -> T:
        await migrate(url)  # a fresh database gets its schema, so its first token works
        async with await psycopg.AsyncConnection.connect(
            url, autocommit=True, row_factory=dict_row
        ) as conn:
            return await work(PsycopgTx(conn))

    try:
        return asyncio.run(run())
    except psycopg.OperationalError as exc:
        raise Unavailable(f"cannot use the database at {redact(url)}: {first_line(exc)}") from None


def token_create(args: argparse.Namespace) -> int:
    role = check_role(args.role)
    expires_in = parse_expiry(args.expires) if args.expires else None
    info, token = _in_database(args, lambda tx: create_token(tx, args.name, role, expires_in))
    if args.output == "json":
        output.print_json({**info.to_dict(), "token": token})
    else:
        print(token)
        print(
            f"token {info.name!r} ({info.role}) created; it is shown only now: keep it in a "
            "secret store and pass it as HODEI_TOKEN",
            file=sys.stderr,
        )
    return exit_codes.OK


def _rows(tokens: list[TokenInfo]) -> list[list[str]]:
    return [
        [
            t.name,
            str(t.role),
            t.status,
            output.age(t.created_at, t.now),
            output.stamp(t.expires_at) if t.expires_at else "never",
            output.age(t.last_used_at, t.now) if t.last_used_at else "never",
            str(t.id),
        ]
        for t in tokens
    ]


def token_list(args: argparse.Namespace) -> int:
    tokens = _in_database(args, list_tokens)
    if args.output == "json":
        output.print_json([t.to_dict() for t in tokens])
    else:
        output.print_table(
            ["NAME", "ROLE", "STATUS", "CREATED", "EXPIRES", "LAST USED", "ID"], _rows(tokens)
        )
    return exit_codes.OK


def token_revoke(args: argparse.Namespace) -> int:
    info = _in_database(args, lambda tx: revoke_token(tx, args.ref))
    if args.output == "json":
        output.print_json(info.to_dict())
    else:
        print(f"token {info.name!r} revoked")
    return exit_codes.OK
