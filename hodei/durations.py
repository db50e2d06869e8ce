"""How durations and ages read for people ("850 ms", "12 s", "5 min", "2 h", "3 d").

One formatter for the reports, `hodei-diagnose` and the CLI's tables, so an age reads
the same wherever it is printed. No I/O: the platform imports it without the report
package.
"""

from __future__ import annotations

from datetime import UTC, datetime


def human_age(seconds: float | None) -> str:
    """A duration in the unit that reads best; "n/a" when unknown."""
    if seconds is None:
        return "n/a"
    s = max(0.0, float(seconds))
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 90:
        return f"{s:.1f} s" if s < 10 else f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    if s < 172800:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} d"


def age_since(when: datetime | None, now: datetime | None = None) -> str:
    """'12 s ago', '5 min ago', '-' for never: how long ago `when` was."""
    if when is None:
        return "-"
    return f"{human_age(((now or datetime.now(UTC)) - when).total_seconds())} ago"


def ms(seconds: float | None) -> str:
    """A duration in whole milliseconds, "N/A" when unknown (report metric tables)."""
    return "N/A" if seconds is None else f"{seconds * 1000:.0f} ms"
