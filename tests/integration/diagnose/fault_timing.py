"""How long hodei-diagnose takes to name a fault, measured by the fault suite.

A fault test injects its fault from outside, notes when it became observable, then calls
`named_within`: it runs the real CLI again and again until the report's root cause (or,
with `check=`, that check's finding) is the expected code, and returns that run and the
seconds from "observable" to the end of the naming run. When `HODEI_FAULT_TIMES` names a
file, each measurement is appended to it as one JSON line, for
`benchmarks/diagnose_faults.py`, which prints the table in docs/diagnose.md. The test
itself asserts what the user sees (code, sentence, exit code), not a duration: the
machines are noisy, figures belong in the benchmark.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

#: Environment variable naming the JSON-lines file the measurements go to (unset: none).
TIMES_ENV = "HODEI_FAULT_TIMES"


def _named(run: Any, code: str, check: str | None) -> bool:
    if check is None:
        return bool(run.report.get("root_cause_code") == code)
    try:
        return bool(run.check(check).get("finding") == code)
    except AssertionError:
        return False


async def named_within(
    run_diagnose: Any,
    args: list[str],
    code: str,
    *,
    fault: str,
    observable_at: float,
    check: str | None = None,
    give_up_s: float = 60.0,
) -> tuple[Any, float]:
    """Run diagnose until it names `code`; returns (that run, seconds since observable).

    `observable_at` is a `time.monotonic()` reading taken when the fault became visible
    from outside (e.g. just after the SIGKILL returned or the lock was granted).
    Fails the test with the last report if `give_up_s` passes first.
    """
    last: Any = None
    while True:
        last = await run_diagnose(*args)
        elapsed = time.monotonic() - observable_at
        if _named(last, code, check):
            _record(fault, code, elapsed)
            return last, elapsed
        if elapsed > give_up_s:
            raise AssertionError(
                f"{fault}: {code} not named within {give_up_s:.0f} s; last root cause "
                f"{last.report.get('root_cause_code')!r}, failing {last.failing()}\n{last.stdout}"
            )


def _record(fault: str, code: str, seconds: float) -> None:
    path = os.environ.get(TIMES_ENV)
    if not path:
        return
    line = json.dumps({"fault": fault, "code": code, "seconds": round(seconds, 3)})
    with Path(path).open("a", encoding="utf-8") as out:
        out.write(line + "\n")
