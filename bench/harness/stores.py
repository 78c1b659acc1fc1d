"""The backends the harness drives, each a throwaway server (or file) of its own.

A Store hands out the environment of an empty store (`reset`), says how many bytes the
store holds (`size_bytes`: what a backlog costs per job) and what it is (`describe`).
PostgreSQL runs with stock settings (fsync and synchronous_commit on) and Redis with AOF
everysec: what chappyd asks for in production, not the test suite's fast settings.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path

from bench.harness.daemon import tree_cpu_s
from chappyd.config import load_settings
from chappyd.drivers import open_driver

BENCH_DB = "bench"


class Store:
    name = ""

    def env(self) -> dict[str, str]:
        raise NotImplementedError

    def reset(self) -> None:
        """Empty the store; the schema is (re)created by chappyd's first use."""
        raise NotImplementedError

    def size_bytes(self) -> int:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def server_cpu_s(self) -> float:
        """CPU seconds the server used so far (0 for an embedded store)."""
        return 0.0

    def close(self) -> None:
        pass


class SqliteStore(Store):
    """A fresh file per reset: nothing of one run's WAL or free pages reaches the next."""

    name = "sqlite"

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.serial = 0

    @property
    def path(self) -> Path:
        return self.directory / f"queue-{self.serial}.sqlite3"

    def env(self) -> dict[str, str]:
        return {"QUEUE_DRIVER": "database", "DATABASE_URL": f"sqlite:///{self.path}"}

    def reset(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        self.serial += 1

    def size_bytes(self) -> int:
        if not self.path.exists():
            return 0
        conn = sqlite3.connect(self.path)
        try:  # fold the WAL into the file first
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
        return sum(Path(f"{self.path}{s}").stat().st_size
                   for s in ("", "-wal") if Path(f"{self.path}{s}").exists())

    def describe(self) -> str:
        return f"SQLite {sqlite3.sqlite_version} (WAL, file on local disk)"


class PostgresStore(Store):
    name = "postgres"

    def __init__(self) -> None:
        from tests.servers.postgres import start_server

        self.server = start_server(settings={})  # stock settings: durable commits
        self.server.admin(f"CREATE DATABASE {BENCH_DB}")

    def env(self) -> dict[str, str]:
        return {"QUEUE_DRIVER": "database", "DATABASE_URL": self.server.url(BENCH_DB)}

    def reset(self) -> None:
        import psycopg

        driver = open_driver(load_settings(environ={"CHAPPY_CONFIG": "/dev/null", **self.env()}))
        driver.migrate()
        driver.close()
        with psycopg.connect(self.server.url(BENCH_DB), autocommit=True) as conn:
            conn.execute("TRUNCATE queue")
            conn.execute("VACUUM ANALYZE queue")

    def size_bytes(self) -> int:
        import psycopg

        with psycopg.connect(self.server.url(BENCH_DB), autocommit=True) as conn:
            row = conn.execute("SELECT pg_total_relation_size('queue')").fetchone()
        return int(row[0]) if row else 0

    def describe(self) -> str:
        version = subprocess.run([str(self.server.bindir / "postgres"), "--version"],
                                 capture_output=True, text=True).stdout.strip()
        return f"{version}, stock settings (fsync, synchronous_commit on)"

    def server_cpu_s(self) -> float:
        postmaster = int((self.server.data / "postmaster.pid").read_text().split()[0])
        return tree_cpu_s(postmaster)

    def close(self) -> None:
        self.server.destroy()


class RedisStore(Store):
    name = "redis"

    def __init__(self) -> None:
        from tests.servers.redis import RedisServer

        self.directory = Path(tempfile.mkdtemp(prefix="chappyd-bench-redis-"))
        self.server = RedisServer(self.directory)
        self.server.start()

    def _client(self):  # type: ignore[no-untyped-def]
        import redis

        return redis.Redis.from_url(self.env()["REDIS_URL"])

    def env(self) -> dict[str, str]:
        return {"QUEUE_DRIVER": "redis", "REDIS_URL": f"{self.server.url}/0"}

    def reset(self) -> None:
        client = self._client()
        client.flushall()
        client.close()

    def size_bytes(self) -> int:
        client = self._client()
        used = int(client.info("memory")["used_memory"])
        client.close()
        return used

    def describe(self) -> str:
        client = self._client()
        version = client.info("server")["redis_version"]
        client.close()
        return f"Redis {version}, AOF everysec, size = INFO used_memory"

    def server_cpu_s(self) -> float:
        assert self.server.process is not None
        return tree_cpu_s(self.server.process.pid)

    def close(self) -> None:
        self.server.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


def open_store(backend: str, directory: Path) -> Store:
    if backend == "sqlite":
        return SqliteStore(directory)
    if backend == "postgres":
        return PostgresStore()
    if backend == "redis":
        return RedisStore()
    raise ValueError(f"unknown backend {backend!r}")
