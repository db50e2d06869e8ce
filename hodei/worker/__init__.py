"""The Hodei worker agent: `run(settings)` runs one worker process until a signal.

Modules:
- `service`: the process (supervised stream and heartbeat tasks, graceful shutdown);
- `connection`: the reconnecting gRPC stream client, one handler per status code;
- `agent`: slots, the attempts held, what to send next (and resend after a reconnect);
- `launch`: an accepted attempt's process started, its lines buffered, its end handed
  back to the agent;
- `heartbeat`: the heartbeat loop; `shutdown`: drain, stop the jobs, flush;
- `wakeups`: the events those parts share with the agent;
- `runner`: one job as a child process group (timeout, cancel, output pumps);
- `lines`: output bytes -> capped, valid UTF-8 lines, and the per-attempt log buffer;
- `wire`: fast LogBatch encoding.

This package imports none of them when it loads: the job guard runs as
`python -m hodei.worker.guard`, and runpy imports this package first. Had it imported
`service` (and through it `guard`), every worker start would print runpy's
RuntimeWarning about `hodei.worker.guard` already being in sys.modules, and the
guard would load gRPC for nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hodei.worker.service import run

__all__ = ["run"]


def __getattr__(name: str) -> object:
    if name == "run":
        from hodei.worker.service import run

        return run
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
