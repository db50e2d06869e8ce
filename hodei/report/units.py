"""How durations and ages read in reports ("850 ms", "12 s", "5 min", "2 h")."""

from __future__ import annotations


def human_age(seconds: float | None) -> str:
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


def ms(seconds: float | None) -> str:
    return "N/A" if seconds is None else f"{seconds * 1000:.0f} ms"
