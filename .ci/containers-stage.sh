#!/usr/bin/env bash
# CI container stage (called by .ci/run after the local tests):
#   1. .ci/containers-prepare.sh: dockerd, local images (debootstrap base, PostgreSQL,
#      Debian python base, hodei/hodei:dev from the wheelhouse), docker compose v2
#   2. the features on the containers launcher (PostgreSQL, server and workers each in
#      a container, host networking); report in reports/containers/
#   3. tests/containers: the image, the launcher (worker container killed and
#      replaced), and the compose smoke test (docker-compose.e2e.yml up with host
#      networking, `hodei job run -- echo hi` and `hodei-diagnose` from the host, down)
# Prints the time of each step. Exit code: non-zero if any step failed (all run).
set -uo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1
# No registry: testcontainers' reaper (Ryuk) would need a pull. The launcher removes
# its containers itself.
export TESTCONTAINERS_RYUK_DISABLED=true
export HODEI_CONTAINER_TESTS=1

PYTEST=.venv/bin/pytest
[ -x "$PYTEST" ] || PYTEST="python3 -m pytest"

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
t0=$(now)
rc=0

echo "== containers: prepare (dockerd, images, compose)"
if ! bash .ci/containers-prepare.sh; then
    echo "containers-prepare failed: the container features cannot run" >&2
    exit 1
fi
t1=$(now)

echo "== containers: features on the containers launcher"
$PYTEST features/ --launcher containers -q -p no:cacheprovider \
    --report-dir reports/containers || rc=1
t2=$(now)

echo "== containers: image, launcher and compose tests"
$PYTEST tests/containers -q -p no:cacheprovider -rs || rc=1
t3=$(now)

# Nothing of this stage may outlive it (a failed test could leave a compose project).
leftover="$(docker ps -aq --filter label=org.hodei.e2e.run; docker ps -aq --filter 'name=hodei-e2e-test-')"
if [ -n "$leftover" ]; then
    echo "removing leftover containers: $(echo $leftover | wc -w)"
    docker rm -f $leftover >/dev/null 2>&1 || true
fi

echo "== containers stage timings: prepare $(secs "$t0" "$t1") s, features $(secs "$t1" "$t2") s," \
     "container tests $(secs "$t2" "$t3") s, total $(secs "$t0" "$(now)") s"
exit $rc
