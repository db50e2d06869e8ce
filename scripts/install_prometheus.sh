#!/usr/bin/env bash
# Puts Debian's `prometheus` and `promtool`, and `prometheus-alertmanager` and `amtool`,
# under .tools/prometheus/usr/bin/ (gitignored) for the alert-rule and alert-routing
# tests and the @metrics scenario: `apt-get download` + `dpkg -x`, so no package is
# installed system-wide and root is not needed when the apt lists exist.
# Idempotent: a package whose binaries are already there is not fetched again.
#   bash scripts/install_prometheus.sh          # HODEI_TOOLS_DIR overrides .tools
set -euo pipefail
cd "$(dirname "$0")/.."
tools=${HODEI_TOOLS_DIR:-$PWD/.tools}
dest=$tools/prometheus
bin=$dest/usr/bin

# package -> the binaries it must leave in $bin
declare -A wanted=(
    [prometheus]="prometheus promtool"
    [prometheus-alertmanager]="prometheus-alertmanager amtool"
)

has_all() {
    local name
    for name in $1; do [ -x "$bin/$name" ] || return 1; done
}

missing=()
for package in prometheus prometheus-alertmanager; do
    if has_all "${wanted[$package]}"; then
        echo "$package already in $bin"
    else
        missing+=("$package")
    fi
done

# Debian's Alertmanager reads its default notification template from this absolute
# path and does not start without it: copy the package's templates there (root only).
default_templates() {
    local system=/usr/share/prometheus/alertmanager
    [ -f "$system/default.tmpl" ] && return 0
    if mkdir -p "$system" 2>/dev/null && cp "$dest$system"/*.tmpl "$system"/ 2>/dev/null; then
        echo "copied Alertmanager's templates to $system (Debian's build reads them there)"
    else
        echo "install_prometheus: cannot write $system (not root?): Debian's Alertmanager" \
            "will not start, and its tests are skipped" >&2
    fi
}

if [ ${#missing[@]} -eq 0 ]; then
    default_templates
    exit 0
fi

for tool in apt-get dpkg; do
    command -v "$tool" >/dev/null || {
        echo "install_prometheus: $tool not found; this script needs a Debian or Ubuntu system" \
            "(elsewhere put prometheus, promtool, prometheus-alertmanager and amtool on PATH)" >&2
        exit 1
    }
done

# apt-get download needs the package lists; without them, one `apt-get update` (root).
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "install_prometheus: '$*' needs root and sudo is not available" >&2; exit 1; fi; }
if ! apt-cache show "${missing[@]}" >/dev/null 2>&1; then
    echo "install_prometheus: the apt lists do not know ${missing[*]}; running apt-get update" >&2
    as_root apt-get update -qq
fi

work=$(mktemp -d)
chmod 755 "$work"   # apt downloads as _apt where it can
trap 'rm -rf "$work"' EXIT
mkdir -p "$dest"
for package in "${missing[@]}"; do
    (cd "$work" && apt-get download -q "$package" >/dev/null) || {
        echo "install_prometheus: 'apt-get download $package' failed (no network, or no such" \
            "package in this release's lists)" >&2
        exit 1
    }
    deb=$(ls "$work/${package}"_*.deb)
    dpkg -x "$deb" "$dest"
    has_all "${wanted[$package]}" || {
        echo "install_prometheus: $deb holds no usr/bin/{${wanted[$package]// /,}}" >&2
        exit 1
    }
    echo "installed $(basename "$deb") into $dest"
done
default_templates
echo "$("$bin/promtool" --version 2>&1 | head -1); $("$bin/amtool" --version 2>&1 | head -1)"
