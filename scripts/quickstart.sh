#!/usr/bin/env bash
# One command from a fresh checkout to a finished job on the embedded PostgreSQL:
# creates .venv, installs Hodei, starts `hodei up` (embedded database + server + 1 worker),
# runs one job with its logs streamed live, prints the job, and stops everything.
#   bash scripts/quickstart.sh [-- CMD ARGS...]
# The embedded database lives where `hodei up` keeps it by default (the per-user data
# dir, or HODEI_DATA_DIR), so a later `hodei up` or `hodei-diagnose` finds the same one.
# The log of `hodei up` is kept in a file whose path is printed at the start and the end.
set -euo pipefail
cd "$(dirname "$0")/.."
port=${HODEI_QUICKSTART_PORT:-50051}
venv=${HODEI_QUICKSTART_VENV:-.venv}
if [ "${1:-}" = "--" ]; then shift; fi
if [ $# -eq 0 ]; then set -- sh -c 'echo "hello from Hodei on $(hostname)"; echo "this line went to stderr" >&2'; fi

[ -x "$venv/bin/hodei" ] || {
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install -q --upgrade pip
    "$venv/bin/python" -m pip install -q -e .
}
hodei=$venv/bin/hodei
log=$(mktemp -t hodei-quickstart.XXXXXX.log)
echo "--- starting hodei up on port $port; its log: $log" >&2
"$hodei" up --port "$port" --workers 1 >"$log" 2>&1 &
up_pid=$!
trap 'kill -INT $up_pid 2>/dev/null; wait $up_pid 2>/dev/null || true; echo "--- hodei up stopped; its log: $log" >&2' EXIT

# Wait until the server answers and a worker is READY (at most 60 s).
for _ in $(seq 1 120); do
    if ! kill -0 "$up_pid" 2>/dev/null; then echo "hodei up exited; its log:" >&2; cat "$log" >&2; exit 1; fi
    if "$hodei" --server "127.0.0.1:$port" workers 2>/dev/null | grep -q READY; then break; fi
    sleep 0.5
done

set +e
"$hodei" --server "127.0.0.1:$port" job run -- "$@"
rc=$?
set -e
echo "--- job finished with exit code $rc; recent jobs:"
"$hodei" --server "127.0.0.1:$port" job list --limit 3
exit $rc
