"""`hodei e2e`: the whole feature suite on the embedded default, and the report's path.

A thin entry point over `pytest features/`: it finds the checkout's features/
directory, passes the options through, and returns pytest's exit code.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

from harness.launchers.base import LAUNCHERS, TLS_OPTIONS


def project_root() -> Path | None:
    """The checkout holding features/ (the harness is installed editable from it), or the
    current directory if it holds one."""
    for candidate in (Path(__file__).resolve().parents[1], Path.cwd()):
        if (candidate / "features").is_dir() and (candidate / "conftest.py").is_file():
            return candidate
    return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hodei e2e",
        description="Run the end-to-end features against a Hodei platform and write the report "
        "(reports/latest.md, reports/latest.json).",
    )
    add_arguments(parser)
    return parser


def add_parser(sub: Any) -> None:
    """Register `hodei e2e` on the hodei CLI's subparsers (sync command)."""
    parser = sub.add_parser(
        "e2e",
        help="run the end-to-end features and write the report",
        description="Run `pytest features/` against a Hodei platform (default: embedded "
        "PostgreSQL, a server and 2 workers started locally) and write "
        "reports/latest.md and reports/latest.json.",
    )
    add_arguments(parser)
    parser.set_defaults(sync_handler=run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--launcher",
        choices=LAUNCHERS,
        default=None,
        help="local (default: embedded PostgreSQL, server and workers as "
        "processes), live (attach), containers",
    )
    parser.add_argument("--database-url", default=None, help="live: the deployment's database")
    parser.add_argument("--server", default=None, help="live: the deployment's HOST:PORT")
    for name, what in TLS_OPTIONS.items():
        parser.add_argument("--tls-" + name.replace("_", "-"), default=None, help=f"live: {what}")
    parser.add_argument("--lang", choices=("en", "es"), default="en", help="report language")
    parser.add_argument("--report-dir", default=None, help="default: <checkout>/reports")
    parser.add_argument(
        "-n",
        "--parallel",
        type=int,
        default=0,
        help="run scenarios in N pytest-xdist processes (one merged report)",
    )
    parser.add_argument("-k", dest="keyword", default=None, help="only scenarios matching")
    parser.add_argument(
        "--compare",
        nargs=2,
        metavar=("A", "B"),
        default=None,
        help="compare two recorded runs of <report dir>/history.jsonl (run ids, a unique "
        "prefix, `previous` or `latest`) instead of running",
    )
    parser.add_argument(
        "--reopen",
        metavar="RUN_DIR",
        default=None,
        help="start the embedded PostgreSQL a kept run left in RUN_DIR (the report's psql "
        "commands then work) instead of running",
    )
    parser.add_argument("--stop", action="store_true", help="with --reopen: stop it again")
    parser.add_argument("pytest_args", nargs="*", help="more pytest arguments, after --")


def pytest_argv(args: argparse.Namespace, root: Path) -> list[str]:
    argv = [sys.executable, "-m", "pytest", str(root / "features"), "--report-lang", args.lang]
    if args.parallel:
        # Not with -q: under -q xdist prints "bringing up nodes..." in place of its
        # status line, once when the nodes start and again when they have collected.
        argv += ["-n", str(args.parallel)]
    else:
        argv.append("-q")
    if args.launcher:
        argv += ["--launcher", args.launcher]
    if args.database_url:
        argv += ["--database-url", args.database_url]
    if args.server:
        argv += ["--server", args.server]
    for name in TLS_OPTIONS:
        value = getattr(args, "tls_" + name)
        if value:
            argv += ["--tls-" + name.replace("_", "-"), value]
    if args.report_dir:
        argv += ["--report-dir", str(Path(args.report_dir).resolve())]
    if args.keyword:
        argv += ["-k", args.keyword]
    return argv + list(args.pytest_args)


def run(args: argparse.Namespace) -> int:
    if args.compare or args.reopen:
        from harness.e2e_tools import compare_runs, reopen

        if args.reopen:
            return reopen(Path(args.reopen), args.stop)
        checkout = project_root() or Path.cwd()
        report_dir = Path(args.report_dir) if args.report_dir else checkout / "reports"
        return compare_runs(report_dir, args.compare[0], args.compare[1], args.lang)
    missing = [name for name in ("pytest", "pytest_bdd") if importlib.util.find_spec(name) is None]
    if missing:
        print(
            f"hodei e2e: {', '.join(missing)} not installed: pip install 'hodei[e2e]'",
            file=sys.stderr,
        )
        return 2
    root = project_root()
    if root is None:
        print("hodei e2e: features/ not found: run it from a Hodei checkout", file=sys.stderr)
        return 2
    try:
        return subprocess.run(pytest_argv(args, root), cwd=root, check=False).returncode
    except KeyboardInterrupt:
        return 130


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
