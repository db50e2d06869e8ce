"""Fail fast once the run knows why jobs cannot run.

A scenario waiting for a job (or the CLI, or a log stream) asks `RootCauseWatch.check`
between polls. After a short grace it takes a database snapshot now and then and asks
the report's rules (`hodei.report.rules.blocking_finding`) whether a critical root
cause already explains the wait (the dispatcher switched off, a stalled dispatcher...).
The first one found is written to `<run dir>/root-cause.json`, which every pytest
process of the run reads (xdist workers too): from then on every wait of the run gives
up at once with `BlockedByRootCause`, and the scenario is recorded as caused by it,
instead of waiting out its full 15-30 s.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

ROOT_CAUSE_FILE = "root-cause.json"
#: Waiting this long is normal (a job is dispatched in ms): only then look for a cause.
GRACE_S = 1.0
#: Between two snapshots of one wait (each is a handful of read-only queries).
EVERY_S = 1.0


@dataclass
class KnownCause:
    """A critical finding that stops jobs from running, as the run diagnosed it."""

    code: str
    sentence: str
    params: dict[str, Any] = field(default_factory=dict)
    found_after_s: float = 0.0


class BlockedByRootCause(AssertionError):
    """A wait gave up early: the run already knows why it cannot succeed."""

    def __init__(self, what: str, waited_s: float, cause: KnownCause) -> None:
        self.what = what
        self.waited_s = waited_s
        self.cause = cause
        super().__init__(
            f"stopped waiting after {waited_s:.1f}s for {what}: the run already diagnosed "
            f"{cause.code}: {cause.sentence}"
        )

    def phrase(self) -> dict[str, Any]:
        from harness.waits import phrase_of

        return {
            "code": "WAIT_GAVE_UP",
            "params": {
                "waited": f"{self.waited_s:.1f}",
                "what": phrase_of(self.what),
                "cause": self.cause.code,
                "sentence": {"code": f"finding:{self.cause.code}", "params": self.cause.params},
            },
        }


class RootCauseWatch:
    """One pytest process's view of the run's known root cause (shared through a file)."""

    def __init__(self, run_dir: Path, database_url: str) -> None:
        self.path = run_dir / ROOT_CAUSE_FILE
        self.database_url = database_url
        self._known: KnownCause | None = None
        self._last_look = 0.0
        self._started = time.monotonic()

    def known(self) -> KnownCause | None:
        if self._known is None and self.path.exists():
            with contextlib.suppress(OSError, ValueError, TypeError):
                self._known = KnownCause(**json.loads(self.path.read_text(encoding="utf-8")))
        return self._known

    def check(self, waited_s: float) -> KnownCause | None:
        """The known root cause, or a fresh look at the database once the wait is long
        enough; None while nothing explains the wait."""
        cause = self.known()
        if cause is not None or waited_s < GRACE_S:
            return cause
        now = time.monotonic()
        if now - self._last_look < EVERY_S:
            return None
        self._last_look = now
        found = self._diagnose()
        if found is not None:
            found.found_after_s = round(now - self._started, 3)
            self._record(found)
        return self.known()

    def _diagnose(self) -> KnownCause | None:
        from hodei.diagnose.probes import take_snapshot
        from hodei.report.catalogue import fill, finding_text
        from hodei.report.rules import blocking_finding

        try:
            finding = blocking_finding(take_snapshot(self.database_url))
        except Exception as exc:  # a failed look is no diagnosis: keep waiting
            logger.info("root-cause look failed: %s", exc)
            return None
        if finding is None:
            return None
        sentence = fill(finding_text(finding.code, "en").root_cause, finding.params)
        return KnownCause(code=finding.code, sentence=sentence, params=dict(finding.params))

    def _record(self, cause: KnownCause) -> None:
        # First writer wins: another process may have found it a moment earlier.
        try:
            with self.path.open("x", encoding="utf-8") as fh:
                json.dump(asdict(cause), fh, default=str)
        except FileExistsError:
            return
        except OSError as exc:
            logger.warning("cannot record the root cause in %s: %s", self.path, exc)
            self._known = cause
