"""sd_notify: the master talks to a real AF_UNIX datagram socket, as systemd's."""

from __future__ import annotations

import os
import signal
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import E2E
from tests.procs import wait_until


class NotifySocket:
    def __init__(self, abstract: bool) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = f"chappyd-test-{os.getpid()}-{id(self)}"
            self.sock.bind("\0" + name)
            self.address = "@" + name
        else:
            self.dir = tempfile.mkdtemp(prefix="sdn-")  # AF_UNIX paths are short
            self.address = str(Path(self.dir) / "notify")
            self.sock.bind(self.address)
        self.sock.setblocking(False)
        self.messages: list[list[str]] = []

    def received(self) -> list[list[str]]:
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return self.messages
            self.messages.append(data.decode().split("\n"))

    def lines(self) -> list[str]:
        return [line for message in self.received() for line in message]

    def close(self) -> None:
        self.sock.close()
        if not self.address.startswith("@"):
            os.unlink(self.address)
            os.rmdir(self.dir)


@pytest.fixture(params=["path", "abstract"])
def notify_socket(request: pytest.FixtureRequest) -> Iterator[NotifySocket]:
    sock = NotifySocket(abstract=request.param == "abstract")
    yield sock
    sock.close()


def test_ready_status_and_stopping_reach_the_notify_socket(
        e2e: E2E, notify_socket: NotifySocket) -> None:
    e2e.push("Env", var="NOTIFY_SOCKET")
    status, _ = e2e.run("--stop-when-empty", NOTIFY_SOCKET=notify_socket.address)
    assert status == 0
    lines = notify_socket.lines()
    assert lines.count("READY=1") == 1
    assert any(line.startswith("STATUS=") and "workers" in line for line in lines)
    assert lines[-1] == "STOPPING=1" or "STOPPING=1" in lines
    assert lines.index("READY=1") < lines.index("STOPPING=1")
    # the child ran the job without the master's notify socket
    assert [e.name for e in e2e.events("done")] == ["unset"]


def test_hup_sends_reloading_then_ready_and_the_watchdog_is_fed(
        e2e: E2E, notify_socket: NotifySocket) -> None:
    daemon = e2e.start(NOTIFY_SOCKET=notify_socket.address, WATCHDOG_USEC="400000")
    wait_until(lambda: "READY=1" in notify_socket.lines(), 15, "READY=1")
    daemon.signal(signal.SIGHUP)
    wait_until(lambda: notify_socket.lines().count("READY=1") == 2, 15, "READY=1 again")
    lines = notify_socket.lines()
    assert lines.index("RELOADING=1") < len(lines) - 1 - lines[::-1].index("READY=1")
    wait_until(lambda: notify_socket.lines().count("WATCHDOG=1") >= 3, 10, "watchdog pings")
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(15) == 0
    assert "STOPPING=1" in notify_socket.lines()
