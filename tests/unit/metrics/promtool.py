"""Where the real `promtool` is: on PATH, else where scripts/install_prometheus.sh puts
it (.tools/prometheus/usr/bin/); None when neither has it (the test then skips, saying so)."""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
INSTALLED = ROOT / ".tools" / "prometheus" / "usr" / "bin" / "promtool"
MISSING = (
    "promtool not found on PATH nor in .tools/prometheus/usr/bin/ "
    "(scripts/install_prometheus.sh, or Debian's `prometheus` package, installs it)"
)


def promtool() -> str | None:
    found = shutil.which("promtool")
    if found:
        return found
    return str(INSTALLED) if INSTALLED.is_file() else None
