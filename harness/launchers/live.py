"""`live` launcher: attach to a running deployment; start, stop and alter nothing.

The harness only reads the tables and creates jobs labelled `hodei.io/test=true`
(see harness.driver.TEST_LABELS); scenarios that must kill processes are skipped
with that reason, because the live launcher does not own any process.
"""

from __future__ import annotations

import grpc
import psycopg

from harness.launchers.base import Deployment, Launcher, LaunchError, server_health
from harness.tables import read_only_connection
from hodei.client.rpc_errors import translate
from hodei.errors import HodeiError
from hodei.redaction import redact


class LiveLauncher(Launcher):
    name = "live"
    can_kill_processes = False
    skip_reason = "the live launcher attaches to a deployment it does not own: it kills nothing"

    def __init__(
        self,
        database_url: str | None,
        server_address: str | None,
        tls: dict[str, str] | None = None,
        token: str = "",
    ) -> None:
        if not database_url or not server_address:
            raise LaunchError(
                "the live launcher needs --database-url and --server "
                "(or HODEI_E2E_DATABASE_URL and HODEI_E2E_SERVER)"
            )
        self.database_url = database_url
        self.server_address = server_address
        self.tls = dict(tls or {})
        #: A client token is enough: the harness submits, reads and cancels only its own
        #: test jobs, lists workers and the queue, and reads the database directly.
        self.token = token
        self.deployment: Deployment | None = None

    def start(self) -> Deployment:
        try:
            # Read-only session: the harness must never change a live deployment's rows.
            with read_only_connection(self.database_url) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as exc:
            raise LaunchError(
                f"live database {redact(self.database_url)} unreachable: {exc}"
            ) from None
        probe = Deployment("live", self.database_url, self.server_address, tls=self.tls)
        try:
            # A wrong TLS file is a ConfigError naming it, raised before any call.
            status = server_health(self.server_address, timeout_s=5.0, tls=probe.client_tls())
        except HodeiError as exc:
            raise LaunchError(f"live server {self.server_address}: {exc}") from None
        except grpc.RpcError as exc:
            error = translate(exc, self.server_address, 5.0, tls=probe.client_tls())
            raise LaunchError(f"live server {self.server_address} unreachable: {error}") from None
        except Exception as exc:
            raise LaunchError(f"live server {self.server_address} unreachable: {exc}") from None
        if status != "SERVING":
            raise LaunchError(f"live server {self.server_address} is {status}, not SERVING")
        self.deployment = Deployment(
            mode="live",
            database_url=self.database_url,
            server_address=self.server_address,
            owned=False,
            tls=self.tls,
            token=self.token,
        )
        return self.deployment

    def stop(self) -> None:
        # Nothing to stop: we started nothing.
        self.deployment = None
