"""`hodei e2e --compare A B` and `hodei e2e --reopen RUN_DIR [--stop]`: the run history
and a kept run's embedded database, from the command line. One-line errors, exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hodei.report.history import (
    HISTORY_FILE,
    HistoryError,
    compare,
    comparison_lines,
    read_history,
    resolve,
)

#: Run in a fresh interpreter (pgserver's pg_ctl is not safe in a threaded process):
#: start (or adopt) the kept data directory, leave it running, print its databases.
_START = """
import sys, pgserver
srv = pgserver.get_server(sys.argv[1], cleanup_mode=None)
rows = srv.psql("SELECT datname FROM pg_database WHERE datname LIKE 'hodei%' ORDER BY 1;")
print(srv.get_uri())
for name in rows.split():
    if name.startswith("hodei"):
        print(srv.get_uri(name))
"""
_STOP = """
import sys, pgserver
pgserver.get_server(sys.argv[1], cleanup_mode="stop").cleanup()
"""


def compare_runs(report_dir: Path, a: str, b: str, lang: str) -> int:
    path = report_dir / HISTORY_FILE
    entries = read_history(path)
    try:
        before, after = resolve(entries, a, path), resolve(entries, b, path)
    except HistoryError as exc:
        print(f"hodei e2e: {exc}", file=sys.stderr)
        return 2
    print(f"{before.run_id} → {after.run_id}")
    for line in comparison_lines(compare(before, after), lang):
        print(f"- {line}")
    return 0


def reopen(run_dir: Path, stop: bool) -> int:
    """Start (or, with `stop`, stop) the embedded PostgreSQL a kept run left behind."""
    pgdata = run_dir / "pg"
    if not (pgdata / "PG_VERSION").is_file():
        print(
            f"hodei e2e: {run_dir} holds no embedded database (removed after a green run, "
            "or the run used --database-url)",
            file=sys.stderr,
        )
        return 2
    proc = subprocess.run(
        [sys.executable, "-c", _STOP if stop else _START, str(pgdata)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["unknown error"])[-1]
        print(f"hodei e2e: cannot {'stop' if stop else 'start'} {pgdata}: {last}", file=sys.stderr)
        return 1
    if stop:
        print(f"stopped the embedded PostgreSQL of {run_dir}")
        return 0
    urls = proc.stdout.split()
    print(f"embedded PostgreSQL of {run_dir} running; the report's psql commands work now:")
    for url in urls[1:] or urls:
        print(f"  psql '{url}'")
    print(f"stop it with: hodei e2e --reopen {run_dir} --stop")
    return 0
