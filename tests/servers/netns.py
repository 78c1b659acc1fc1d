"""Hosts of the test's own: network namespaces joined by veth pairs, for cutting a host
off the network. Root only (CI runs as root); a test without it fails with one line.

Layout: a backend namespace and two host namespaces, each host wired to the backend by
its own veth pair, created inside the namespaces (never in the machine's own), with
addresses from 10.200.0.0/16 that exist only there, and no default route: nothing can
leave them. The backend also listens on a Unix socket in a temp dir, through which the
test itself (in the machine's namespace) pushes and inspects. Everything is removed at
teardown; deleting a namespace deletes its veth ends.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers.redis import redis_binary


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")


@dataclass(frozen=True)
class Host:
    namespace: str
    address: str  # this host's address on its link
    backend_address: str  # the backend's address on the same link
    link: str  # the backend's end of the link: down = this host is cut off


class Network:
    def __init__(self, hosts: int = 2) -> None:
        tag = f"chp{os.getpid()}"
        self.backend = f"{tag}b"
        self.namespaces = [self.backend]
        self.hosts: list[Host] = []
        for index in range(1, hosts + 1):
            self.hosts.append(Host(f"{tag}h{index}", f"10.200.{index}.2",
                                   f"10.200.{index}.1", f"vb{index}"))

    def create(self) -> None:
        _ip("netns", "add", self.backend)
        _ip("-n", self.backend, "link", "set", "lo", "up")
        for index, host in enumerate(self.hosts, start=1):
            _ip("netns", "add", host.namespace)
            self.namespaces.append(host.namespace)
            _ip("-n", host.namespace, "link", "set", "lo", "up")
            # both ends made inside the namespaces: the machine's own never sees them
            _ip("-n", host.namespace, "link", "add", f"vh{index}", "type", "veth",
                "peer", "name", host.link, "netns", self.backend)
            _ip("-n", host.namespace, "addr", "add", f"{host.address}/24", "dev", f"vh{index}")
            _ip("-n", self.backend, "addr", "add", f"{host.backend_address}/24",
                "dev", host.link)
            _ip("-n", host.namespace, "link", "set", f"vh{index}", "up")
            _ip("-n", self.backend, "link", "set", host.link, "up")

    def cut(self, host: Host) -> None:
        _ip("-n", self.backend, "link", "set", host.link, "down")

    def restore(self, host: Host) -> None:
        _ip("-n", self.backend, "link", "set", host.link, "up")

    def destroy(self) -> None:
        for namespace in reversed(self.namespaces):
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                _ip("netns", "del", namespace)


class NamespacedRedis:
    """redis-server inside the backend namespace, on every host link and a Unix socket."""

    def __init__(self, network: Network) -> None:
        self.network = network
        self.directory = Path(tempfile.mkdtemp(prefix="chappyd-netns-"))
        self.socket = self.directory / "redis.sock"
        self.port = 6400
        self.process: subprocess.Popen[bytes] | None = None

    def url_for(self, host: Host) -> str:
        return f"redis://{host.backend_address}:{self.port}/0"

    @property
    def local_url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> None:
        binds = [host.backend_address for host in self.network.hosts]
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", self.network.backend, redis_binary(),
             "--port", str(self.port), "--bind", *binds, "--unixsocket", str(self.socket),
             "--unixsocketperm", "700", "--dir", str(self.directory), "--appendonly", "yes",
             "--save", "", "--daemonize", "no", "--logfile", str(self.directory / "log"),
             # no password: the links lead only to the test's own namespaces
             "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail("redis-server exited at start in its namespace", pytrace=False)
            with contextlib.suppress(redis.RedisError, OSError):
                if redis.Redis(unix_socket_path=str(self.socket)).ping():
                    return
            time.sleep(0.05)
        pytest.fail("redis-server in its namespace not ready in 10 s", pytrace=False)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture
def network() -> Iterator[Network]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.fail("the network namespace tests need root and iproute2's ip "
                    "(scripts/system-deps.sh installs it; CI runs as root)", pytrace=False)
    net = Network()
    try:
        net.create()
        yield net
    finally:
        net.destroy()


@pytest.fixture
def namespaced_redis(network: Network) -> Iterator[NamespacedRedis]:
    server = NamespacedRedis(network)
    try:
        server.start()
        yield server
    finally:
        server.stop()
