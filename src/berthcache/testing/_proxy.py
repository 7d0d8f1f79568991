"""A tiny TCP forwarder standing in for ElastiCache's primary endpoint (a DNS name).

Clients connect to the proxy's fixed port; it forwards bytes (TLS passes through untouched) to
whichever server is primary now. ``retarget()`` moves it and drops the connections it carries,
which is what clients see when ElastiCache fails over: the name moves and old connections die.
``cut()`` / ``heal()`` stand in for a network partition: while cut nothing is read or forwarded
and new connections are not accepted (the kernel's backlog completes their handshake, then they
hang), so clients see timeouts, not resets; healed, the bytes the kernel buffered flow on.
One thread with a selector serves every connection; ``close()`` stops it and closes all sockets.
"""

from __future__ import annotations

import contextlib
import queue
import selectors
import socket
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Self

__all__ = ["TCPProxy"]

_CHUNK = 65536


class TCPProxy:
    """Forward ``listen_host:port`` to a movable ``(host, port)`` target."""

    def __init__(self, target: tuple[str, int], *, listen_host: str = "127.0.0.1") -> None:
        self._target = target
        self._listener = socket.create_server((listen_host, 0))
        self._listener.setblocking(False)
        self.host = listen_host
        self.port: int = self._listener.getsockname()[1]
        self._selector = selectors.DefaultSelector()
        self._peers: dict[socket.socket, socket.socket] = {}
        self._commands: queue.Queue[tuple[Callable[[], None], threading.Event]] = queue.Queue()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._stopping = False
        self._cut = False
        self._thread = threading.Thread(
            target=self._run, name=f"berthcache-proxy-{self.port}", daemon=True
        )
        self._thread.start()

    @property
    def target(self) -> tuple[str, int]:
        return self._target

    @property
    def connection_count(self) -> int:
        """Client connections currently carried."""
        return len(self._peers) // 2

    def retarget(self, target: tuple[str, int], *, drop_connections: bool = True) -> None:
        """Point new connections at ``target``; by default close every existing one."""

        def change() -> None:
            self._target = target
            if drop_connections:
                self._drop_all()

        self._call(change)

    @property
    def is_cut(self) -> bool:
        return self._cut

    def cut(self) -> None:
        """Stop forwarding and accepting (a partition between clients and Redis)."""

        def stop_reading() -> None:
            if self._cut:
                return
            self._cut = True
            for sock in [self._listener, *self._peers]:
                with contextlib.suppress(KeyError, ValueError):
                    self._selector.unregister(sock)

        self._call(stop_reading)

    def heal(self) -> None:
        """Forward and accept again (what the kernel buffered meanwhile flows on)."""

        def resume_reading() -> None:
            if not self._cut:
                return
            self._cut = False
            self._selector.register(self._listener, selectors.EVENT_READ, "accept")
            for sock in self._peers:
                self._selector.register(sock, selectors.EVENT_READ, "peer")

        self._call(resume_reading)

    def drop_connections(self) -> None:
        """Close every carried connection (both sides), like a node dropping its clients."""
        self._call(self._drop_all)

    def _drop_all(self) -> None:
        for sock in list(self._peers):
            self._close_pair(sock)

    def _call(self, func: Callable[[], None], timeout: float = 5.0) -> None:
        if not self._thread.is_alive():
            raise RuntimeError("the endpoint proxy is not running")
        done = threading.Event()
        self._commands.put((func, done))
        self._wake_w.send(b"x")
        if not done.wait(timeout):
            raise RuntimeError(f"the endpoint proxy did not answer within {timeout:g} s")

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread and close every socket. Idempotent."""
        if self._thread.is_alive():
            self._stopping = True
            with contextlib.suppress(OSError):
                self._wake_w.send(b"x")
            self._thread.join(timeout)
        for sock in (self._wake_w, self._wake_r, self._listener):
            sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the loop (proxy thread only) ----------------------------------------------------------

    def _run(self) -> None:
        sel = self._selector
        sel.register(self._listener, selectors.EVENT_READ, "accept")
        sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        try:
            while not self._stopping:
                for key, _ in sel.select(timeout=1.0):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    if key.data == "accept":
                        self._accept()
                    elif key.data == "wake":
                        self._drain_commands()
                    elif sock in self._peers:
                        self._forward(sock)
        finally:
            self._drain_commands()
            self._drop_all()
            sel.close()

    def _drain_commands(self) -> None:
        with contextlib.suppress(OSError):
            while self._wake_r.recv(4096):
                pass
        while True:
            try:
                func, done = self._commands.get_nowait()
            except queue.Empty:
                return
            try:
                func()
            finally:
                done.set()

    def _accept(self) -> None:
        try:
            client, _ = self._listener.accept()
        except BlockingIOError:
            return
        try:
            upstream = socket.create_connection(self._target, timeout=2.0)
        except OSError:
            client.close()  # like an endpoint whose node is down: the connection dies
            return
        for sock in (client, upstream):
            sock.setblocking(True)
            sock.settimeout(5.0)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if not self._cut:
                self._selector.register(sock, selectors.EVENT_READ, "peer")
        self._peers[client] = upstream
        self._peers[upstream] = client

    def _forward(self, sock: socket.socket) -> None:
        peer = self._peers[sock]
        try:
            data = sock.recv(_CHUNK)
            if data:
                peer.sendall(data)
                return
        except OSError:
            pass
        self._close_pair(sock)

    def _close_pair(self, sock: socket.socket) -> None:
        peer = self._peers.pop(sock, None)
        for s in (sock, peer):
            if s is None:
                continue
            self._peers.pop(s, None)
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(s)
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
