"""A TCP proxy on loopback the fault tests put between two parts of a deployment, so
they can break the network path between them from outside: `reset()` cuts every open
connection (a load balancer's idle timeout, a NAT table flushed), `cut()` also stops
accepting (a firewall rule, a partition).

One thread owns every socket; `reset()` and `cut()` ask it and wait, so no socket is
closed under the selector's feet."""

from __future__ import annotations

import contextlib
import selectors
import socket
import struct
import threading


class TcpProxy:
    """`target_host` may be a directory holding a PostgreSQL unix socket (the embedded
    database listens on one only): the proxy then dials `<dir>/.s.PGSQL.<port>`."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.setblocking(False)
        self.port = int(self._listener.getsockname()[1])
        self._pairs: dict[socket.socket, socket.socket] = {}
        self._sel = selectors.DefaultSelector()
        self._sel.register(self._listener, selectors.EVENT_READ)
        self._accepting = True
        self._stop = threading.Event()
        self._reset_asked = threading.Event()
        self._reset_done = threading.Event()
        self._last_reset = 0
        self._thread = threading.Thread(target=self._run, name="tcp-proxy", daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._reset_asked.is_set():
                self._last_reset = self._close_all()
                self._reset_asked.clear()
                self._reset_done.set()
            for key, _ in self._sel.select(timeout=0.05):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock is self._listener:
                    self._accept()
                else:
                    self._forward(sock)
        self._close_all()
        self._sel.close()
        self._listener.close()

    def _accept(self) -> None:
        try:
            client, _ = self._listener.accept()
        except OSError:
            return
        if not self._accepting:
            client.close()
            return
        try:
            upstream = self._dial()
        except OSError:
            client.close()
            return
        for s in (client, upstream):
            s.setblocking(True)
            self._sel.register(s, selectors.EVENT_READ)
        self._pairs[client] = upstream
        self._pairs[upstream] = client

    def _dial(self) -> socket.socket:
        host, port = self.target
        if not host.startswith("/"):
            return socket.create_connection(self.target, timeout=2)
        unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        unix.settimeout(2)
        try:
            unix.connect(f"{host}/.s.PGSQL.{port}")
        except OSError:
            unix.close()
            raise
        return unix

    def _forward(self, sock: socket.socket) -> None:
        peer = self._pairs.get(sock)
        try:
            data = sock.recv(65536)
            if data and peer is not None:
                peer.sendall(data)
                return
        except OSError:
            pass
        self._close(sock)

    def _close(self, sock: socket.socket, *, abort: bool = False) -> None:
        peer = self._pairs.pop(sock, None)
        if peer is not None:
            self._pairs.pop(peer, None)
        for s in (sock, peer):
            if s is None:
                continue
            with contextlib.suppress(KeyError, ValueError):
                self._sel.unregister(s)
            if abort:  # RST, not FIN: the peer sees the connection reset, as on a cut path
                with contextlib.suppress(OSError):
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()

    def _close_all(self) -> int:
        pairs = len(self._pairs) // 2
        while self._pairs:
            self._close(next(iter(self._pairs)), abort=True)
        return pairs

    def reset(self) -> int:
        """Cut every open connection (both ends see a reset); new ones are still
        accepted. Returns how many connections were cut."""
        self._reset_done.clear()
        self._reset_asked.set()
        self._reset_done.wait(timeout=5)
        return self._last_reset

    def cut(self) -> None:
        """A partition: open connections cut, new ones refused."""
        self._accepting = False
        self.reset()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
