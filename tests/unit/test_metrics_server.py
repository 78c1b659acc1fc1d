"""The /metrics endpoint over real TCP connections, driven by a select loop as the
master drives it: it answers, refuses other paths, drops silent clients and never
blocks the loop."""

from __future__ import annotations

import fcntl
import http.client
import select
import socket
import threading
import time

import pytest
import structlog.testing
from prometheus_client import CONTENT_TYPE_LATEST

from chappyd.daemon.metrics import Metrics
from chappyd.daemon.metrics_server import (
    CONNECTION_DEADLINE_S,
    MAX_CONNECTIONS,
    MetricsServer,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def server(clock):
    metrics = Metrics()
    metrics.job_finished("emails", "app.Send", "done", 0.01)
    server = MetricsServer("127.0.0.1:0", metrics.exposition, clock=clock)
    server.bind()
    yield server
    server.close()


def port_of(server: MetricsServer) -> int:
    return int(server.bound.rpartition(":")[2])


def run_loop(server: MetricsServer, until, limit_s: float = 5.0) -> float:
    """Turn the loop as the master does until `until()`; returns the longest turn."""
    longest = 0.0
    deadline = time.monotonic() + limit_s
    while not until():
        assert time.monotonic() < deadline, "the loop never got there"
        ready, _, _ = select.select(server.fds(), [], [], 0.05)
        began = time.monotonic()
        for fd in ready:
            server.handle_readable(fd)
        server.tick()
        longest = max(longest, time.monotonic() - began)
    return longest


def in_thread(fn):
    result: dict[str, object] = {}

    def target():
        try:
            result["value"] = fn()
        except BaseException as exc:
            result["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, result


def http_get(port: int, path: str, method: str = "GET"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request(method, path)
    response = conn.getresponse()
    answer = response.status, response.getheader("Content-Type"), response.read()
    conn.close()
    return answer


def test_get_metrics_over_tcp(server):
    thread, result = in_thread(lambda: http_get(port_of(server), "/metrics"))
    run_loop(server, lambda: not thread.is_alive())
    status, content_type, body = result["value"]
    assert (status, content_type) == (200, CONTENT_TYPE_LATEST)
    assert b'chappyd_jobs_total{job="app.Send",outcome="done",queue="emails"} 1.0\n' in body
    assert server.fds() == [server.fileno()]  # the connection is closed after the reply


@pytest.mark.parametrize("path,method,status", [
    ("/", "GET", 404), ("/metricsx", "GET", 404), ("/metrics/", "GET", 404),
    ("/metrics", "POST", 405), ("/metrics?name[]=x", "GET", 200),
])
def test_other_paths_and_methods(server, path, method, status):
    thread, result = in_thread(lambda: http_get(port_of(server), path, method))
    run_loop(server, lambda: not thread.is_alive())
    assert result["value"][0] == status


def test_a_silent_client_is_dropped_at_its_deadline_and_blocks_nobody(server, clock):
    silent = socket.create_connection(("127.0.0.1", port_of(server)), timeout=5)
    run_loop(server, lambda: len(server.fds()) == 2)
    # meanwhile another client is served at once
    thread, result = in_thread(lambda: http_get(port_of(server), "/metrics"))
    longest = run_loop(server, lambda: not thread.is_alive())
    assert result["value"][0] == 200
    assert longest < 0.5
    assert len(server.fds()) == 2  # the silent one is still within its deadline
    clock.now += CONNECTION_DEADLINE_S
    server.tick()
    assert server.fds() == [server.fileno()]
    assert silent.recv(1) == b""  # closed by the server
    silent.close()


def test_a_client_that_sends_half_a_request_is_dropped_too(server, clock):
    slow = socket.create_connection(("127.0.0.1", port_of(server)), timeout=5)
    slow.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
    run_loop(server, lambda: len(server.fds()) == 2)
    for fd in server.fds()[1:]:
        server.handle_readable(fd)  # reads the partial head, must not wait for the rest
    clock.now += CONNECTION_DEADLINE_S
    server.tick()
    assert slow.recv(1) == b""
    slow.close()


def test_an_oversized_request_is_dropped(server):
    big = socket.create_connection(("127.0.0.1", port_of(server)), timeout=5)
    big.sendall(b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 20000)
    run_loop(server, lambda: len(server.fds()) == 2)
    run_loop(server, lambda: len(server.fds()) == 1)
    try:
        received = big.recv(65536)
    except ConnectionResetError:  # unread bytes left behind turn the close into a reset
        received = b""
    assert received == b""  # no reply: dropped
    big.close()


def test_connections_beyond_the_cap_are_closed_at_once(server):
    port = port_of(server)
    held = [socket.create_connection(("127.0.0.1", port), timeout=5)
            for _ in range(MAX_CONNECTIONS)]
    run_loop(server, lambda: len(server.fds()) == 1 + MAX_CONNECTIONS)
    extra = socket.create_connection(("127.0.0.1", port), timeout=5)
    ready, _, _ = select.select(server.fds(), [], [], 1.0)
    for fd in ready:
        server.handle_readable(fd)
    assert len(server.fds()) == 1 + MAX_CONNECTIONS
    assert extra.recv(1) == b""
    for sock in [*held, extra]:
        sock.close()


def test_a_reply_larger_than_the_socket_buffer_is_finished_by_later_turns(clock):
    body = b"x" * (8 * 1024 * 1024)
    server = MetricsServer("127.0.0.1:0", lambda: body, clock=clock)
    server.bind()
    try:
        thread, result = in_thread(lambda: http_get(port_of(server), "/metrics"))
        longest = run_loop(server, lambda: not thread.is_alive(), limit_s=20)
        assert result["value"][2] == body
        assert longest < 0.5
    finally:
        server.close()


def test_sockets_are_close_on_exec_and_not_inheritable(server):
    conn = socket.create_connection(("127.0.0.1", port_of(server)), timeout=5)
    run_loop(server, lambda: len(server.fds()) == 2)
    for fd in server.fds():
        assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
    assert not server.listener.get_inheritable()
    assert not server.listener.getblocking()
    conn.close()


def test_bind_logs_the_bound_address_and_refuses_a_taken_port():
    first = MetricsServer("127.0.0.1:0", bytes)
    with structlog.testing.capture_logs() as logged:
        bound = first.bind()
    try:
        host, _, port = bound.rpartition(":")
        assert host == "127.0.0.1" and int(port) > 0
        assert logged == [{"event": "metrics_listening", "address": bound,
                           "log_level": "info"}]
        second = MetricsServer(bound, bytes)
        with pytest.raises(OSError):
            second.bind()
        assert second.fds() == []
    finally:
        first.close()


def test_an_ipv6_address_is_bound_and_logged_in_brackets():
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    server = MetricsServer("[::1]:0", bytes)
    try:
        bound = server.bind()
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback: {exc}")
    try:
        assert bound.startswith("[::1]:") and int(bound.rpartition(":")[2]) > 0
        assert server.listener.family == socket.AF_INET6
    finally:
        server.close()
