"""GET /metrics from the master's own select loop: no thread, never blocking it.

Every socket is non-blocking. A connection gets a small request buffer and a
deadline; past either, or beyond MAX_CONNECTIONS open at once, it is dropped, so a
slow or silent client costs the loop nothing. The master adds fds() to its select
list, calls handle_readable() for those that are readable and tick() every turn
(finishing replies larger than the socket buffer, dropping expired clients), and
closes fds() in every child it forks: the listening socket never reaches a child.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from prometheus_client import CONTENT_TYPE_LATEST

from chappyd.validate import split_address

log = structlog.get_logger("chappyd.metrics")

MAX_CONNECTIONS = 16
#: A request line and headers larger than this are not a Prometheus scrape.
MAX_REQUEST_BYTES = 8192
#: From accept to the last byte sent.
CONNECTION_DEADLINE_S = 2.0
LISTEN_BACKLOG = 16


@dataclass(slots=True)
class _Connection:
    sock: socket.socket
    deadline: float
    request: bytes = b""
    reply: bytes = b""  # what is left to send once the request is complete
    replying: bool = False


class MetricsServer:
    """The master's metrics endpoint; `render` returns the exposition text."""

    def __init__(self, address: str, render: Callable[[], bytes],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.address = address
        self.render = render
        self.clock = clock
        self.listener: socket.socket | None = None
        self.bound = ""  # host:port once bound
        self._connections: dict[int, _Connection] = {}

    # -- the listening socket ------------------------------------------------------------
    def bind(self) -> str:
        """Listen; returns and logs the bound host:port (port 0 becomes the real one).
        Raises OSError when the address cannot be bound."""
        host, port = split_address(self.address)
        family, kind, proto, _, sockaddr = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        listener = socket.socket(family, kind, proto)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.set_inheritable(False)  # FD_CLOEXEC: no exec'd program gets it either
            listener.bind(sockaddr)
            listener.listen(LISTEN_BACKLOG)
            listener.setblocking(False)
        except OSError:
            listener.close()
            raise
        self.listener = listener
        bound_host, bound_port = listener.getsockname()[:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        self.bound = f"{shown}:{bound_port}"
        log.info("metrics_listening", address=self.bound)
        return self.bound

    def fileno(self) -> int:
        return self.listener.fileno() if self.listener is not None else -1

    def fds(self) -> list[int]:
        """The listener and every open connection: for select, and to close after fork."""
        if self.listener is None:
            return []
        return [self.listener.fileno(), *self._connections]

    # -- the loop's calls ----------------------------------------------------------------------
    def handle_readable(self, fd: int) -> None:
        if self.listener is not None and fd == self.listener.fileno():
            self._accept()
        elif (conn := self._connections.get(fd)) is not None:
            self._receive(conn)

    def tick(self) -> None:
        """Send what is left of replies; drop clients past their deadline."""
        now = self.clock()
        for fd, conn in list(self._connections.items()):
            if now >= conn.deadline:
                self._drop(fd)
            elif conn.replying:
                self._send(conn)

    def close(self) -> None:
        for fd in list(self._connections):
            self._drop(fd)
        if self.listener is not None:
            self.listener.close()
            self.listener = None

    # -- one connection ----------------------------------------------------------------------------
    def _accept(self) -> None:
        assert self.listener is not None
        for _ in range(LISTEN_BACKLOG):
            try:
                sock, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE and the like: try again next turn
                log.warning("metrics_accept_failed", error=str(exc))
                return
            if len(self._connections) >= MAX_CONNECTIONS:
                sock.close()  # closed, not left queued: a full backlog would spin select
                continue
            sock.setblocking(False)
            sock.set_inheritable(False)
            deadline = self.clock() + CONNECTION_DEADLINE_S
            self._connections[sock.fileno()] = _Connection(sock, deadline)

    def _receive(self, conn: _Connection) -> None:
        fd = conn.sock.fileno()
        try:
            chunk = conn.sock.recv(MAX_REQUEST_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:
            if not conn.replying:
                self._drop(fd)  # gone, or half-closed before asking
            return
        if conn.replying:
            return  # one request per connection; anything more is ignored
        conn.request += chunk
        end = _end_of_head(conn.request)
        if end < 0:
            if len(conn.request) > MAX_REQUEST_BYTES:
                self._drop(fd)
            return
        conn.reply, conn.replying = self._respond(conn.request[:end]), True
        self._send(conn)

    def _respond(self, head: bytes) -> bytes:
        parts = head.split(b"\r\n", 1)[0].split(b"\n", 1)[0].split()
        method, path = (parts[0], parts[1]) if len(parts) >= 2 else (b"", b"")
        if path.split(b"?", 1)[0] != b"/metrics":
            return _reply(404, "Not Found", b"not found; try /metrics\n")
        if method not in (b"GET", b"HEAD"):
            return _reply(405, "Method Not Allowed", b"use GET\n", allow="GET, HEAD")
        body = self.render()
        reply = _reply(200, "OK", body, content_type=CONTENT_TYPE_LATEST)
        return reply[: len(reply) - len(body)] if method == b"HEAD" else reply

    def _send(self, conn: _Connection) -> None:
        try:
            sent = conn.sock.send(conn.reply)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(conn.sock.fileno())
            return
        conn.reply = conn.reply[sent:]
        if not conn.reply:
            self._drop(conn.sock.fileno())

    def _drop(self, fd: int) -> None:
        conn = self._connections.pop(fd, None)
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.sock.close()


def _end_of_head(request: bytes) -> int:
    """Where the request head ends (its blank line included), or -1."""
    for marker in (b"\r\n\r\n", b"\n\n"):
        at = request.find(marker)
        if at >= 0:
            return at + len(marker)
    return -1


def _reply(status: int, reason: str, body: bytes, content_type: str = "text/plain",
           allow: str | None = None) -> bytes:
    head = [f"HTTP/1.1 {status} {reason}", f"Content-Type: {content_type}",
            f"Content-Length: {len(body)}", "Connection: close"]
    if allow:
        head.append(f"Allow: {allow}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("ascii") + body
