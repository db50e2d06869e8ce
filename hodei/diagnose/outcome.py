"""What a check function decides: its verdict, what it saw and the finding it names.

Kept apart from the registry so that the module turning failed queries into findings
(`failures.py`) and the registry that calls it need not import each other."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hodei.report.model import Status


@dataclass
class Outcome:
    """What a check function decides; the runner adds timing and catalogue texts."""

    status: Status
    observed: str = ""
    threshold: str = ""
    evidence: list[str] = field(default_factory=list)
    finding: str = ""
    params: dict[str, Any] = field(default_factory=dict)


def skip(reason: str) -> Outcome:
    return Outcome(Status.SKIP, observed=reason)
