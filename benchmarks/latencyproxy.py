"""A TCP proxy that delays every byte by a fixed time each way, for timing the suite against a
server that is far away: each chunk read is sent on LATENCY/2 after it arrived, in order, so
that a request and its answer take LATENCY more, whatever their size (a delay line: latency
without a bandwidth limit). Loopback only; stops with its ``with`` block.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import deque
from types import TracebackType


class LatencyProxy:
    """``with LatencyProxy(port, milliseconds) as proxy:`` forwards proxy.port to ``port``."""

    def __init__(self, upstream_port: int, milliseconds: float) -> None:
        self.upstream_port = upstream_port
        self.one_way = milliseconds / 2000
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._stopped = threading.Event()
        self._sockets: list[socket.socket] = []

    def __enter__(self) -> LatencyProxy:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stopped.set()
        self._listener.close()
        for sock in self._sockets:
            sock.close()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream_port))
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sockets += [client, server]
            for source, target in ((client, server), (server, client)):
                self._pipe(source, target)

    def _pipe(self, source: socket.socket, target: socket.socket) -> None:
        line: deque[tuple[float, bytes]] = deque()
        ready = threading.Condition()

        def read() -> None:
            while True:
                try:
                    chunk = source.recv(1 << 16)
                except OSError:
                    chunk = b""
                with ready:
                    line.append((time.monotonic() + self.one_way, chunk))
                    ready.notify()
                if not chunk:
                    return

        def write() -> None:
            while True:
                with ready:
                    while not line:
                        ready.wait()
                    due, chunk = line.popleft()
                time.sleep(max(0.0, due - time.monotonic()))
                try:
                    if not chunk:
                        target.shutdown(socket.SHUT_WR)
                        return
                    target.sendall(chunk)
                except OSError:
                    return

        threading.Thread(target=read, daemon=True).start()
        threading.Thread(target=write, daemon=True).start()
