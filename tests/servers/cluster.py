"""A throwaway Redis Cluster on loopback: three masters and three replicas (redis-server
in cluster mode, joined by `redis-cli --cluster create`), each in its own temp dir on a
free port, AOF on. Quick failure detection (cluster-node-timeout 1 s), so a test can
SIGKILL a master and see its replica promoted."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers.redis import RedisServer, free_port
from tests.servers.sentinel import wait_for

NODE_TIMEOUT_MS = 1000


def _client(port: int):
    import redis

    return redis.Redis(port=port, socket_timeout=2, decode_responses=True)


class RedisClusterGroup:
    def __init__(self, root: Path, masters: int = 3) -> None:
        self.root = root
        self.nodes: list[RedisServer] = []
        for index in range(masters * 2):
            directory = root / f"node{index}"
            directory.mkdir(parents=True)
            self.nodes.append(RedisServer(directory, extra=(
                "--cluster-enabled", "yes",
                "--cluster-config-file", str(directory / "nodes.conf"),
                # the bus port's own free port: the default (port + 10000) may be taken
                # or, for a port above 55535, impossible
                "--cluster-port", str(free_port()),
                "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
                # a replica however far behind may take over: the test kills at will
                "--cluster-replica-validity-factor", "0")))

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes[:3])

    def start(self) -> None:
        cli = shutil.which("redis-cli")
        if cli is None:
            pytest.fail("redis-cli not found on PATH: run scripts/system-deps.sh "
                        "(apt-get install redis-tools)", pytrace=False)
        for node in self.nodes:
            node.start()
        result = subprocess.run(
            [cli, "--cluster", "create", *(f"127.0.0.1:{n.port}" for n in self.nodes),
             "--cluster-replicas", "1", "--cluster-yes"],
            capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            pytest.fail(f"redis-cli --cluster create failed: {result.stdout[-2000:]}"
                        f"{result.stderr[-2000:]}", pytrace=False)
        for node in self.nodes:
            wait_for(lambda n=node: _client(n.port).cluster("info")["cluster_state"] == "ok",
                     30, f"node {node.port} to see the cluster up")
        for port in self.replica_ports():
            wait_for(lambda p=port: _client(p).info("replication")["master_link_status"]
                     == "up", 30, f"replica {port} to sync")

    def roles(self) -> dict[int, str]:
        """port -> 'master' or 'slave' of every live node, as each says of itself."""
        return {node.port: _client(node.port).info("replication")["role"]
                for node in self.nodes if node.process is not None}

    def replica_ports(self) -> list[int]:
        return [port for port, role in self.roles().items() if role == "slave"]

    def master_of_key(self, key: str) -> RedisServer:
        import redis

        slot = _client(self.nodes[0].port).cluster("keyslot", key)
        for node in self.nodes:
            if node.process is None:
                continue
            for start, end, master, *_ in _client(node.port).execute_command(
                    "CLUSTER", "SLOTS"):
                if start <= int(slot) <= end:
                    port = int(master[1])
                    return next(n for n in self.nodes if n.port == port)
        raise redis.RedisError(f"no master serves {key}")

    def replicated(self) -> None:
        """Every master's writes so far reached its replica (WAIT)."""
        for port, role in self.roles().items():
            if role == "master":
                assert _client(port).execute_command("WAIT", 1, 5000) == 1

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


@pytest.fixture
def redis_cluster(tmp_path: Path) -> Iterator[RedisClusterGroup]:
    group = RedisClusterGroup(tmp_path / "cluster")
    try:
        group.start()
        yield group
    finally:
        group.stop()
