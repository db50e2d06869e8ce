"""Worker streams whose token was revoked, or has expired, are cut.

A token is checked when a call starts (hodei.server.api.auth), and a worker stream is
one call that lasts as long as the worker: without this loop, a leaked worker token
revoked by an operator kept its stream, and with it the jobs and their secrets, until
the worker reconnected. One supervised loop ("token-watch") asks the database every
`auth.cache_seconds` (the time a revocation already takes to reach unary calls; 1 s
when the cache is off) which of the tokens of this server's open streams a call would
now be refused with, and ends those streams with UNAUTHENTICATED and the reason. The
worker's jobs are left to it, as on any lost stream: a worker that cannot reconnect is
found LOST by its heartbeats, and its jobs are requeued.
"""

from __future__ import annotations

import asyncio
import logging

from hodei.db.connector import use_role
from hodei.server.sessions import SessionRegistry
from hodei.server.supervisor import wait_or_stop
from hodei.server.tokens import TokenVerifier

logger = logging.getLogger(__name__)

#: The period when tokens are checked on every call (auth.cache_seconds = 0).
_UNCACHED_PERIOD = 1.0


class TokenWatch:
    def __init__(self, verifier: TokenVerifier, registry: SessionRegistry) -> None:
        self.verifier = verifier
        self.registry = registry
        self.period = verifier.cache_seconds or _UNCACHED_PERIOD
        #: Streams cut since start (tests and the log read it).
        self.cut = 0

    async def run(self, stop: asyncio.Event) -> None:
        use_role("recovery")  # a small pool; one short read per period
        while not stop.is_set():
            await self.check()
            await wait_or_stop(stop, seconds=self.period)

    async def check(self) -> None:
        refused = await self.verifier.refused_among(self.registry.token_ids())
        for token_id, reason in refused.items():
            for worker_id in self.registry.cut_token(token_id, reason):
                self.cut += 1
                logger.warning("worker stream cut: %s", reason, extra={"worker_id": str(worker_id)})
