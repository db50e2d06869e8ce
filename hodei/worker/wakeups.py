"""The events the worker agent's parts wait on. One event loop, so no locks: a part
sets an event when something it owns changed, and whoever waits re-reads the state."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


@dataclass(eq=False)
class Wakeups:
    #: Something may be ready to send (a line, a start, a result, a control message).
    send: asyncio.Event = field(default_factory=asyncio.Event)
    #: An attempt finished or was dropped, or the last message given out was written.
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    #: The server confirmed something (a job paused on its full buffer may go on).
    persisted: asyncio.Event = field(default_factory=asyncio.Event)
    #: A stream was welcomed: restarts the heartbeat period (Hello counts as one).
    stream_opened: asyncio.Event = field(default_factory=asyncio.Event)
