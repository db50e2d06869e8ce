#!/usr/bin/env bash
# Puts Debian's `prometheus` and `promtool` under .tools/prometheus/usr/bin/ (gitignored)
# for the alert-rule tests and the @metrics scenario: `apt-get download` + `dpkg -x`,
# so no package is installed system-wide and root is not needed when the apt lists exist.
# Idempotent: does nothing when both binaries are already there.
#   bash scripts/install_prometheus.sh          # HODEI_TOOLS_DIR overrides .tools
set -euo pipefail
cd "$(dirname "$0")/.."
tools=${HODEI_TOOLS_DIR:-$PWD/.tools}
dest=$tools/prometheus
bin=$dest/usr/bin

if [ -x "$bin/prometheus" ] && [ -x "$bin/promtool" ]; then
    echo "prometheus already in $bin: $("$bin/promtool" --version 2>&1 | head -1)"
    exit 0
fi
for tool in apt-get dpkg; do
    command -v "$tool" >/dev/null || {
        echo "install_prometheus: $tool not found; this script needs a Debian or Ubuntu system" \
            "(elsewhere put prometheus and promtool on PATH)" >&2
        exit 1
    }
done

# apt-get download needs the package lists; without them, one `apt-get update` (root).
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "install_prometheus: '$*' needs root and sudo is not available" >&2; exit 1; fi; }
if ! apt-cache show prometheus >/dev/null 2>&1; then
    echo "install_prometheus: the apt lists do not know 'prometheus'; running apt-get update" >&2
    as_root apt-get update -qq
fi

work=$(mktemp -d)
chmod 755 "$work"   # apt downloads as _apt where it can
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download -q prometheus >/dev/null) || {
    echo "install_prometheus: 'apt-get download prometheus' failed (no network, or no such" \
        "package in this release's lists)" >&2
    exit 1
}
deb=$(ls "$work"/prometheus_*.deb)
mkdir -p "$dest"
dpkg -x "$deb" "$dest"
[ -x "$bin/prometheus" ] && [ -x "$bin/promtool" ] || {
    echo "install_prometheus: $deb holds no usr/bin/prometheus and usr/bin/promtool" >&2
    exit 1
}
echo "installed $(basename "$deb") into $dest: $("$bin/promtool" --version 2>&1 | head -1)"
