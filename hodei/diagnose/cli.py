"""`hodei-diagnose`: check a live deployment, name what is broken and why.

Exit codes (check_postgres style): 0 healthy, 1 warnings, 2 failures, 3 a target
(database or server) unreachable, or the diagnosis could not run (bad options).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn, TextIO
from urllib.parse import urlsplit

from hodei.diagnose.registry import Thresholds
from hodei.diagnose.runner import DiagnoseResult, all_checks, diagnose
from hodei.durations import human_age
from hodei.errors import first_line
from hodei.flags import add_setting_flags
from hodei.redaction import redact_text
from hodei.report.catalogue import fill, finding_text
from hodei.report.model import Report, Status
from hodei.report.render import render_markdown

EXIT_UNREACHABLE = 3
MARK = {Status.PASS: "[✓]", Status.WARN: "[!]", Status.FAIL: "[✗]", Status.SKIP: "[-]"}
BULLET = {Status.PASS: "•", Status.WARN: "!", Status.FAIL: "✗", Status.SKIP: "-"}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # Usage errors must not collide with exit 2 ("failures found").
        self.print_usage(sys.stderr)
        self.exit(EXIT_UNREACHABLE, f"hodei-diagnose: error: {message}\n")


def _csv(values: list[str] | None) -> list[str]:
    return [v.strip() for item in values or [] for v in item.split(",") if v.strip()]


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="hodei-diagnose",
        description="Check a Hodei deployment (database, server, workers, queue, dispatcher, "
        "outbox, logs) and name the root cause. Read-only unless --canary.",
        epilog="Exit codes: 0 healthy, 1 warnings, 2 failures, 3 target unreachable or "
        "invalid options.",
    )
    p.add_argument(
        "--database-url",
        help="PostgreSQL URL (default: $HODEI_DATABASE_URL, else the embedded "
        "PostgreSQL of `hodei up` if it is running)",
    )
    p.add_argument(
        "--server",
        metavar="HOST:PORT",
        help="gRPC server address (default: $HODEI_SERVER_ADDRESS, else a live server's "
        "listen address from server_status, else 127.0.0.1:50051)",
    )
    # TLS to the server: the same flags and HODEI_TLS_* variables as `hodei`.
    add_setting_flags(p, "tls.ca", "tls.client_cert", "tls.client_key", "tls.server_name")
    p.add_argument(
        "--token",
        help="token for the server (default: $HODEI_TOKEN, else the admin token of "
        "`hodei up`); least role: client",
    )
    p.add_argument(
        "--canary",
        action="store_true",
        help="queue one job labelled hodei.io/test=true and follow it (writes!)",
    )
    p.add_argument(
        "--server-log",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="server log file to scan for gRPC stream errors (repeatable)",
    )
    p.add_argument(
        "--worker-log",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="worker log file to scan (repeatable)",
    )
    p.add_argument(
        "--metrics-url",
        action="append",
        default=[],
        metavar="URL",
        help="a server's or worker's Prometheus endpoint, e.g. http://127.0.0.1:9464/metrics "
        "(repeatable, comma-separated): read as one more source of evidence",
    )
    # The events on NATS: the same flags and HODEI_NATS_* variables as the server.
    add_setting_flags(p, "broker.nats_url", "broker.stream")
    p.add_argument(
        "--nats-consumer",
        action="append",
        default=[],
        metavar="NAME",
        help="a durable consumer of the events stream whose lag to check "
        "(repeatable, comma-separated)",
    )
    p.add_argument(
        "--only",
        action="append",
        metavar="ID",
        help="run only these checks (id or prefix, comma-separated, repeatable)",
    )
    p.add_argument("--skip", action="append", metavar="ID", help="skip these checks")
    p.add_argument(
        "--threshold",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a threshold, e.g. pending_age_s=10 (see --list-checks)",
    )
    p.add_argument(
        "--format",
        choices=("text", "md", "json"),
        default=None,
        help="report format (default: text on the terminal, md with --output)",
    )
    p.add_argument("--lang", choices=("en", "es"), default="en", help="report language")
    p.add_argument("--output", "-o", type=Path, help="write the report to FILE")
    p.add_argument("--list-checks", action="store_true", help="list the checks and exit")
    return p


def list_checks(out: TextIO) -> None:
    out.write(f"{'ID':32} {'COMPONENT':14} WHAT\n")
    for c in all_checks():
        out.write(f"{c.id:32} {c.component:14} {c.describe}\n")
    out.write("\nThresholds (--threshold NAME=VALUE):\n")
    t = Thresholds()
    for name in Thresholds.names():
        out.write(f"  {name} = {getattr(t, name)}\n")


def doctor_summary(report: Report, verbose: bool = True) -> str:
    """One line per component with [✓] [!] [✗] and its timing, flutter-doctor style."""
    lines = [
        f"Doctor summary (hodei-diagnose {report.version}, {report.duration_s:.2f} s, "
        f"database {report.target.get('database_url') or 'not given'}, "
        f"server {report.target.get('server_address') or 'not given'}):"
    ]
    for comp in report.components:
        lines.append(f"{MARK[comp.status]} {comp.component} ({human_age(comp.duration_s)})")
        for c in (x for x in report.checks if x.component == comp.component):
            if not verbose and c.status == Status.PASS:
                continue
            lines.append(f"    {BULLET[c.status]} {c.id}: {c.observed}")
            if c.status in (Status.WARN, Status.FAIL):
                if c.threshold:
                    lines.append(f"      threshold: {c.threshold}")
                for e in c.evidence[:3]:
                    lines.append(f"      evidence: {e}")
                for r in c.remediation[:2]:
                    lines.append(f"      Try fixing it: {r}")
    failing = [c for c in report.checks if c.status in (Status.WARN, Status.FAIL)]
    lines.append("")
    if report.root_cause:
        lines.append(f"! Root cause: {report.root_cause}")
        for f in report.findings[:4]:
            lines.append(
                f"  - {fill(finding_text(f.code, 'en').title, f.params)} [{f.code}, {f.severity}]"
            )
    elif all(c.status == Status.SKIP for c in report.checks):
        # Skipped is not healthy: say that nothing was looked at, and why (above).
        lines.append("• Nothing was checked: every check was skipped (see the reasons above).")
    elif not failing:
        lines.append("• No issues found!")
    else:
        lines.append(f"! {len(failing)} check(s) need attention.")
    return redact_text("\n".join(lines)) + "\n"


def running_embedded_url(data_dir: Path | None) -> str | None:
    """The URL of the platform's embedded PostgreSQL when its data directory holds one;
    never starts it (pgserver listens on a unix socket in its data directory). A stopped
    one still gives its URL: "the embedded database is down" is the finding, where
    "no --database-url" would hide the deployment the operator is asking about."""
    from hodei.db.embedded import CLUSTER_MARKER, DATABASE_NAME
    from hodei.settings import default_data_dir

    directory = data_dir or default_data_dir()
    if (directory / "postmaster.pid").is_file() or (directory / CLUSTER_MARKER).is_file():
        return f"postgresql://postgres:@/{DATABASE_NAME}?host={directory}"
    return None


def _render(result: DiagnoseResult, fmt: str, lang: str) -> str:
    if fmt == "json":
        return result.report.model_dump_json(indent=2) + "\n"
    if fmt == "md":
        return render_markdown(result.report, lang)
    return doctor_summary(result.report)


def run(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.list_checks:
        list_checks(sys.stdout)
        return 0
    from hodei.cli.credentials import cli_token
    from hodei.errors import HodeiError
    from hodei.flags import setting_overrides
    from hodei.settings import load_settings
    from hodei.tls import client_tls

    try:
        thresholds = Thresholds().with_overrides(args.threshold)
        overrides = setting_overrides(args)
        overrides.setdefault("database", {})["url"] = args.database_url
        settings = load_settings(**overrides)
        tls = client_tls(settings.tls)
    except (ValueError, HodeiError) as exc:
        sys.stderr.write(f"hodei-diagnose: error: {exc}\n")
        return EXIT_UNREACHABLE
    # Given (flag or HODEI_SERVER_ADDRESS): that address. Else the doctor looks for a
    # live server in server_status, and tries the default address last.
    explicit = args.server or (
        settings.server.address if "address" in settings.server.model_fields_set else None
    )
    database_url = settings.database.url or running_embedded_url(settings.database.data_dir)
    for path in args.server_log + args.worker_log:
        problem = _unreadable_log(path)
        if problem:
            sys.stderr.write(f"hodei-diagnose: error: log file {path}: {problem}\n")
            return EXIT_UNREACHABLE
    try:
        result = diagnose(
            database_url,
            explicit,
            server_fallback=None if explicit else settings.server.address,
            thresholds=thresholds,
            canary=args.canary,
            tls=tls,
            server_logs=args.server_log,
            worker_logs=args.worker_log,
            metrics_urls=_metrics_urls(_csv(args.metrics_url)),
            nats=settings.broker if settings.broker.nats_url else None,
            nats_consumers=_csv(args.nats_consumer),
            only=_csv(args.only),
            token=args.token or cli_token(settings),
            skip=_csv(args.skip),
        )
    except ValueError as exc:
        sys.stderr.write(f"hodei-diagnose: error: {exc}\n")
        return EXIT_UNREACHABLE
    fmt = args.format or ("md" if args.output else "text")
    document = _render(result, fmt, args.lang)
    if args.output:
        try:
            args.output.parent.mkdir(parents=True, exist_ok=True)
            args.output.write_text(document, encoding="utf-8")
        except OSError as exc:
            sys.stderr.write(f"hodei-diagnose: error: cannot write {args.output}: {exc.strerror}\n")
            return EXIT_UNREACHABLE
        sys.stdout.write(doctor_summary(result.report))
        sys.stdout.write(f"Report written to {args.output}\n")
    elif fmt == "text":
        sys.stdout.write(document)
    else:
        sys.stdout.write(document)
        sys.stderr.write(doctor_summary(result.report, verbose=False))
    return result.exit_code


def _metrics_urls(values: list[str]) -> list[str]:
    """http(s) URLs; HOST:PORT alone means its /metrics. ValueError on anything else."""
    urls = []
    for value in values:
        url = value if "://" in value else f"http://{value}/metrics"
        parts = urlsplit(url)
        try:
            parts.port  # noqa: B018 (raises ValueError on a port that is not a number)
        except ValueError:
            parts = parts._replace(scheme="")
        host = parts.hostname or ""
        if (
            parts.scheme not in ("http", "https")
            or not host
            or any(not c.isprintable() or c.isspace() for c in url)
        ):
            raise ValueError(f"--metrics-url {value!r}: expected http://HOST:PORT/metrics")
        urls.append(url)
    return urls


def _unreadable_log(path: Path) -> str:
    """Why `path` cannot be scanned as a log file ("" when it can): a missing file, a
    directory or a FIFO (which would block the scan) each say what they are."""
    if not path.exists():
        return "not found"
    if path.is_dir():
        return "is a directory"
    if not path.is_file():
        return "not a regular file"
    try:
        with path.open("rb"):
            return ""
    except OSError as exc:
        return f"cannot read: {exc.strerror}"


def main(argv: list[str] | None = None) -> None:
    try:
        code = run(argv)
    except KeyboardInterrupt:
        sys.stderr.write("hodei-diagnose: interrupted\n")
        code = 130
    except Exception as exc:  # never a traceback for a user
        first = first_line(exc)
        sys.stderr.write(
            f"hodei-diagnose: internal error: {type(exc).__name__}: {redact_text(first)}\n"
        )
        code = EXIT_UNREACHABLE
    sys.exit(code)


if __name__ == "__main__":
    main()
