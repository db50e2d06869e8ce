"""The Hodei worker agent: `run(settings)` runs one worker process until a signal.

Modules:
- `service`: the process (supervised stream and heartbeat tasks, graceful shutdown);
- `connection`: the reconnecting gRPC stream client, one handler per status code;
- `agent`: slots, the attempts held, what to send next (and resend after a reconnect);
- `runner`: one job as a child process group (timeout, cancel, output pumps);
- `lines`: output bytes -> capped, valid UTF-8 lines, and the per-attempt log buffer;
- `wire`: fast LogBatch encoding.
"""

from hodei.worker.service import run

__all__ = ["run"]
