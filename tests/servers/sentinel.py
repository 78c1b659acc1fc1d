"""A throwaway Redis Sentinel group on loopback: one master, one replica, three sentinels
(redis-server --sentinel), each in its own temp dir on a free port. Quick failure
detection (1 s), so a test can SIGKILL the master and see the replica promoted."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers.redis import RedisServer, free_port, redis_binary

MASTER_NAME = "chappymaster"
DOWN_AFTER_MS = 1000


def info(port: int, section: str) -> dict[str, str]:
    import redis

    client = redis.Redis(port=port, socket_timeout=2, decode_responses=True)
    try:
        return {k: str(v) for k, v in client.info(section).items()}
    finally:
        client.close()


def wait_for(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if predicate():
                return
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout_s} s waiting for {what}", pytrace=False)


class SentinelGroup:
    def __init__(self, root: Path) -> None:
        self.root = root
        dirs = [root / name for name in ("master", "replica")]
        for directory in dirs:
            directory.mkdir(parents=True)
        self.master = RedisServer(dirs[0])
        self.replica = RedisServer(dirs[1], extra=(
            "--replicaof", "127.0.0.1", str(self.master.port)))
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.sentinels: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{MASTER_NAME}"

    def start(self) -> None:
        self.master.start()
        self.replica.start()
        wait_for(lambda: info(self.replica.port, "replication")["master_link_status"] == "up",
                 15, "the replica to sync")
        for index, port in enumerate(self.sentinel_ports):
            directory = self.root / f"sentinel{index}"
            directory.mkdir()
            config = directory / "sentinel.conf"
            config.write_text("\n".join([
                f"port {port}", "bind 127.0.0.1", f"dir {directory}",
                f"logfile {directory / 'sentinel.log'}",
                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.master.port} 2",
                f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}",
                f"sentinel failover-timeout {MASTER_NAME} 10000",
                f"sentinel parallel-syncs {MASTER_NAME} 1", ""]))
            self.sentinels.append(subprocess.Popen(
                [redis_binary(), str(config), "--sentinel"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        # every sentinel knows the replica and the two other sentinels: a failover
        # needs a quorum of 2 and a replica to promote
        for port in self.sentinel_ports:
            wait_for(lambda p=port: self._sentinel_ready(p), 20, f"sentinel {port}")

    def _sentinel_ready(self, port: int) -> bool:
        import redis

        client = redis.Redis(port=port, socket_timeout=2, decode_responses=True)
        try:
            state = client.execute_command("SENTINEL", "MASTER", MASTER_NAME)
            fields = dict(zip(state[::2], state[1::2], strict=True)) \
                if isinstance(state, list) else state
            return int(fields["num-other-sentinels"]) == 2 and int(fields["num-slaves"]) == 1
        finally:
            client.close()

    def master_port(self) -> int:
        import redis

        client = redis.Redis(port=self.sentinel_ports[0], socket_timeout=2,
                             decode_responses=True)
        try:
            _, port = client.execute_command(
                "SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)
            return int(port)
        finally:
            client.close()

    def stop(self) -> None:
        for process in self.sentinels:
            process.terminate()
        for process in self.sentinels:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        self.replica.stop()
        self.master.stop()


@pytest.fixture
def sentinel_group(tmp_path: Path) -> Iterator[SentinelGroup]:
    group = SentinelGroup(tmp_path / "sentinel")
    try:
        group.start()
        yield group
    finally:
        group.stop()
