#!/usr/bin/env bash
# The platform without its test tools: a clean `pip install .` (no extras) in a new
# virtual environment must run `hodei up`, `hodei job run` and `hodei-diagnose`, and
# must not be able to import pytest, pytest-bdd or testcontainers (the [e2e] extra).
#   bash scripts/smoke_bare_install.sh            (.ci/run calls it)
# Exit code: 0 when all of that holds; the first failure is named on stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$(mktemp -d -t hodei-bare.XXXXXX)
up_pid=
cleanup() {
    if [ -n "$up_pid" ]; then kill -INT "$up_pid" 2>/dev/null || true; wait "$up_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "bare install: $*" >&2; [ -f "$work/up.log" ] && tail -20 "$work/up.log" >&2; exit 1; }

python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q --disable-pip-version-check "$root" 2>&1 \
    | grep -v 'is ignored: it is neither' || true
bin="$work/venv/bin"
[ -x "$bin/hodei" ] || fail "pip install . did not install the hodei command"

# No test framework in the runtime install.
found=$("$bin/python" -c "import importlib.util as u; print(' '.join(m for m in ('pytest', 'pytest_bdd', 'testcontainers') if u.find_spec(m)))")
[ -z "$found" ] || fail "the bare install can import: $found"
# `hodei e2e` is listed but says which extra it needs, in one line, exit 2.
set +e
e2e_err=$("$bin/hodei" e2e 2>&1 >/dev/null); e2e_rc=$?
set -e
[ "$e2e_rc" = 2 ] && grep -q "pip install 'hodei\[e2e\]'" <<<"$e2e_err" \
    || fail "hodei e2e without the extra: exit $e2e_rc, '$e2e_err'"

port=$("$bin/python" -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
cd "$work"  # nothing from the checkout on sys.path
# The CLI finds the admin token `hodei up` made in its data directory (authentication is
# on): the same data directory for both, as HODEI_DATA_DIR.
export HODEI_DATA_DIR="$work/pgdata"
"$bin/hodei" up --port "$port" --workers 1 >"$work/up.log" 2>&1 &
up_pid=$!
for _ in $(seq 1 120); do
    kill -0 "$up_pid" 2>/dev/null || fail "hodei up exited"
    if "$bin/hodei" --server "127.0.0.1:$port" workers 2>/dev/null | grep -q READY; then break; fi
    sleep 0.5
done
out=$("$bin/hodei" --server "127.0.0.1:$port" job run -- echo bare-install-ok) \
    || fail "hodei job run failed"
[ "$out" = "bare-install-ok" ] || fail "hodei job run printed '$out'"
# The doctor finds the running embedded database through its data directory.
"$bin/hodei-diagnose" --server "127.0.0.1:$port" --format json --output "$work/diagnose.json" \
    >/dev/null 2>"$work/diagnose.err" || true
"$bin/python" - "$work/diagnose.json" <<'EOF' || fail "hodei-diagnose: $(cat "$work/diagnose.err")"
import json, sys
report = json.load(open(sys.argv[1]))
assert report["checks"], "no checks ran"
reached = {c["id"]: c["status"] for c in report["checks"]}
assert reached.get("database.connect") == "PASS", reached
EOF

# The harness's pytest11 entry point is in every install: another project's pytest run
# in this environment must neither break (pytest-bdd's hooks are unknown without the
# extra) nor start a platform. A trivial test in an empty directory, with pytest alone,
# then again with [e2e] below.
other_project() {
    rm -rf "$work/other" && mkdir -p "$work/other"
    printf 'def test_nothing():\n    assert True\n' >"$work/other/test_other.py"
    (cd "$work/other" && "$bin/python" -m pytest -q -p no:cacheprovider >"$work/other.log" 2>&1) \
        || { tail -20 "$work/other.log" >&2; fail "$1: pytest in another project failed"; }
    grep -q "1 passed" "$work/other.log" || fail "$1: pytest in another project: $(tail -3 "$work/other.log")"
    [ ! -e "$work/other/reports" ] || fail "$1: the harness acted in another project (wrote reports/)"
}
"$bin/python" -m pip install -q --disable-pip-version-check pytest 2>&1 \
    | grep -v 'is ignored: it is neither' || true
other_project "hodei + pytest"

# The [e2e] extra on top, installed as a user would (not editable): the harness must be
# in the wheel, load as a pytest plugin and give `hodei e2e`.
"$bin/python" -m pip install -q --disable-pip-version-check "$root[e2e]" 2>&1 \
    | grep -v 'is ignored: it is neither' || true
"$bin/python" -c "import harness.plugin" || fail "[e2e]: the harness is not in the wheel"
"$bin/hodei" e2e --help >/dev/null || fail "[e2e]: hodei e2e --help failed"
plugins=$("$bin/python" -m pytest --version --version 2>&1) || fail "[e2e]: pytest does not start: $plugins"
grep -q "harness/plugin.py" <<<"$plugins" || fail "[e2e]: pytest did not load the harness plugin: $plugins"
other_project "[e2e]"
# And the features from this checkout, on that install (one scenario: the harness starts
# its own embedded PostgreSQL, server and workers).
(cd "$root" && "$bin/pytest" features -q -p no:cacheprovider -k "layer" \
    --report-dir "$work/reports" >"$work/features.log" 2>&1) \
    || { tail -20 "$work/features.log" >&2; fail "[e2e]: pytest features/ failed"; }
grep -q "1 passed" "$work/features.log" || fail "[e2e]: pytest features/ ran no scenario"
echo "bare install: hodei up, job run and hodei-diagnose work without pytest, pytest-bdd or testcontainers; with [e2e] the harness loads into pytest"
