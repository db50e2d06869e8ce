"""A NATS server with JetStream of one's own (`nats-server -js -p PORT -sd DIR`), for
the tests and benchmarks that stop it: the machine's shared one (127.0.0.1:4222) is
never stopped. Killed and started again on the same port and store, it keeps its
streams."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path

from harness.launchers.base import free_port
from harness.waits import wait_for

#: Debian's nats-server package puts it here; PATH is tried too.
DEFAULT_BINARY = "/usr/sbin/nats-server"
SHARED_URL = "nats://127.0.0.1:4222"


def nats_server_binary() -> str | None:
    if os.access(DEFAULT_BINARY, os.X_OK):
        return DEFAULT_BINARY
    return shutil.which("nats-server")


def reachable(url: str, seconds: float = 1.0) -> bool:
    """A TCP connection to the host:port of a nats:// URL can be opened."""
    host, _, port = url.removeprefix("nats://").partition(":")
    try:
        with socket.create_connection((host, int(port or 4222)), timeout=seconds):
            return True
    except OSError:
        return False


class NatsServerExited(RuntimeError):
    pass


class NatsServer:
    def __init__(self, store: Path, port: int = 0, binary: str | None = None) -> None:
        found = binary or nats_server_binary()
        if found is None:
            raise FileNotFoundError("nats-server not found (apt-get install nats-server)")
        self.binary = found
        self.store = store
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = store / "nats-server.log"

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, seconds: float = 10.0) -> NatsServer:
        self.store.mkdir(parents=True, exist_ok=True)
        argv = [self.binary, "-js", "-a", "127.0.0.1", "-p", str(self.port)]
        argv += ["-sd", str(self.store), "-l", str(self.log)]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
        proc = self.proc

        def up() -> bool:
            if proc.poll() is not None:
                tail = self.log.read_text()[-500:] if self.log.exists() else ""
                raise NatsServerExited(f"nats-server on port {self.port} exited: {tail}")
            return reachable(self.url, 0.2)

        try:
            wait_for(
                f"nats-server to listen on port {self.port}",
                up,
                bool,
                seconds,
                poll_s=0.05,
                abort_on=(NatsServerExited,),
            )
        except BaseException:
            self.kill()
            raise
        return self

    def kill(self) -> None:
        """SIGKILL: an outage, not a shutdown."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None
