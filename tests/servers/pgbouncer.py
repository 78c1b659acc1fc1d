"""A throwaway PgBouncer in front of the test PostgreSQL: transaction pooling, one server
connection per database (every client's transactions take turns on it), a free loopback
port, its own temp dir. As root it runs as `postgres` (PgBouncer refuses root).

A missing binary fails the test with one line: scripts/system-deps.sh installs it.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers.postgres import SUPERUSER, PostgresServer, free_port

START_DEADLINE_S = 10.0


def pgbouncer_binary() -> str:
    path = shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if os.path.exists("/usr/sbin/pgbouncer") else None)
    if path is None:
        pytest.fail("pgbouncer not found: run scripts/system-deps.sh "
                    "(apt-get install pgbouncer)", pytrace=False)
    return path


class PgBouncer:
    """One pgbouncer process pooling every database of `server`."""

    def __init__(self, server: PostgresServer, pool_size: int = 1) -> None:
        self.server = server
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="chappyd-pgbouncer-"))
        self.pool_size = pool_size
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _write_config(self) -> Path:
        (self.root / "users.txt").write_text(f'"{SUPERUSER}" ""\n')
        config = self.root / "pgbouncer.ini"
        config.write_text("\n".join([
            "[databases]",
            f"* = host=127.0.0.1 port={self.server.port}",
            "[pgbouncer]",
            "listen_addr = 127.0.0.1",
            f"listen_port = {self.port}",
            "unix_socket_dir =",
            "auth_type = trust",
            f"auth_file = {self.root / 'users.txt'}",
            "pool_mode = transaction",
            f"default_pool_size = {self.pool_size}",
            "min_pool_size = 0",
            "reserve_pool_size = 0",
            "max_client_conn = 200",
            "server_reset_query =",
            "ignore_startup_parameters = extra_float_digits,options",
            f"logfile = {self.root / 'pgbouncer.log'}",
            f"pidfile = {self.root / 'pgbouncer.pid'}",
            "",
        ]))
        return config

    def start(self) -> None:
        command = [pgbouncer_binary(), str(self._write_config())]
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            for path in (self.root, *self.root.iterdir()):
                os.chown(path, entry.pw_uid, entry.pw_gid)
            command = ["runuser", "-u", "postgres", "--", *command]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_DEADLINE_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"pgbouncer exited at start: {self.log_tail()}", pytrace=False)
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.port), timeout=0.5):
                return
            time.sleep(0.02)
        pytest.fail(f"pgbouncer on port {self.port} not ready in {START_DEADLINE_S} s",
                    pytrace=False)

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = (self.root / "pgbouncer.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
            self.process = None
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def pgbouncer(postgres_server: PostgresServer) -> Iterator[PgBouncer]:
    """A pooler of this test's own (pool of 1) in front of the session's PostgreSQL."""
    bouncer = PgBouncer(postgres_server, pool_size=1)
    bouncer.start()
    try:
        yield bouncer
    finally:
        bouncer.stop()
