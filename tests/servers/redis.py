"""A throwaway redis-server for the tests: free loopback port, its own temp dir, AOF on.

One server per test session (``redis_server``); each test gets a fresh database number
flushed before use (``redis_env``). Tests that restart or kill Redis start their own
with ``RedisServer`` so they never disturb the shared one. A missing redis-server binary
is a one-line failure, never a skip.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

START_DEADLINE_S = 10.0
#: Databases 1..15 are handed out in turn (0 is left alone for manual poking).
_DB_COUNT = 16


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_binary() -> str:
    path = shutil.which("redis-server")
    if path is None:
        pytest.fail("redis-server not found on PATH: run `make system-deps` "
                    "(installs Debian's redis-server)", pytrace=False)
    return path


class RedisServer:
    """One redis-server process with AOF (appendfsync everysec) in `directory`."""

    def __init__(self, directory: Path, port: int | None = None,
                 password: str | None = None, tls: bool = False,
                 extra: tuple[str, ...] = ()) -> None:
        self.directory = directory
        #: more redis-server arguments (cluster mode, replicaof ...)
        self.extra = extra
        self.port = port or free_port()
        self.password = password
        self.tls = tls
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}"

    def start(self) -> None:
        args = [redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.directory), "--appendonly", "yes",
                "--appendfsync", "everysec", "--save", "", "--daemonize", "no",
                "--logfile", str(self.directory / "redis.log")]
        if self.password:
            args += ["--requirepass", self.password]
        args += self.extra
        if self.tls:
            make_certificate(self.directory)
            # TLS only: the plain port is off, so a client that forgets rediss:// fails
            args[args.index("--port") + 1] = "0"
            args += ["--tls-port", str(self.port), "--tls-auth-clients", "no",
                     "--tls-cert-file", str(self.directory / "server.pem"),
                     "--tls-key-file", str(self.directory / "server.key"),
                     "--tls-ca-cert-file", str(self.directory / "server.pem")]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_DEADLINE_S
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                log = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
                pytest.fail(f"redis-server exited at start: {log}", pytrace=False)
            if self.tls:
                with contextlib.suppress(OSError), socket.create_connection(
                        ("127.0.0.1", self.port), timeout=0.5):
                    return  # the TLS port accepts: the server is up
                time.sleep(0.02)
                continue
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.port), timeout=0.5) as sock:
                auth = (f"AUTH {self.password}\r\n" if self.password else "").encode()
                sock.sendall(auth + b"PING\r\n")
                if b"PONG" in sock.recv(200) or b"PONG" in sock.recv(200):
                    return
            time.sleep(0.02)
        pytest.fail(f"redis-server on port {self.port} not ready in {START_DEADLINE_S} s",
                    pytrace=False)

    def kill(self) -> None:
        """SIGKILL: what a crash or an OOM kill does; the AOF is all that remains."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
            self.process = None

    def restart(self, kill: bool = True) -> None:
        self.kill() if kill else self.stop()
        self.start()


def make_certificate(directory: Path) -> None:
    """A self-signed certificate for 127.0.0.1 (server.pem, server.key), by openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl not found on PATH: apt-get install openssl", pytrace=False)
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(directory / "server.key"), "-out", str(directory / "server.pem")],
        check=True, capture_output=True)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    directory = Path(tempfile.mkdtemp(prefix="chappyd-redis-"))
    server = RedisServer(directory)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(directory, ignore_errors=True)


_next_db = iter(range(10**9))


@pytest.fixture
def redis_env(redis_server: RedisServer) -> dict[str, str]:
    """A flushed database of the session's server for one test."""
    import redis

    db = 1 + next(_next_db) % (_DB_COUNT - 1)
    url = f"{redis_server.url}/{db}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    return {"QUEUE_DRIVER": "redis", "REDIS_URL": url}


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A server of this test's own, free to be killed and restarted."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()
