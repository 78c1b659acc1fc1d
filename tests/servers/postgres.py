"""A throwaway PostgreSQL for the tests: initdb + pg_ctl in a temp dir on a free loopback
port, one per test session; a template database migrated once; a fresh database per
test (CREATE DATABASE ... TEMPLATE). Never the machine's own server.

As root, the server runs as the unprivileged `postgres` user (PostgreSQL refuses root).
A missing binary fails the tests that need it with one line: scripts/system-deps.sh
installs it. Also used by the benchmark harness (bench/harness), with durable settings.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest

SUPERUSER = "chappy"
TEMPLATE_DB = "chappy_template"
#: Test-only settings: fsync off survives a crash of PostgreSQL (what the restart tests
#: inflict), just not of the machine; the rest keeps CREATE DATABASE and start-up quick.
FAST_SETTINGS = {"fsync": "off", "full_page_writes": "off", "shared_buffers": "32MB",
                 "max_connections": "100"}


class ServerMissing(RuntimeError):
    """A PostgreSQL server binary is not installed."""


def find_bindir() -> Path:
    """The directory with initdb, pg_ctl and postgres: PATH first, then the newest
    /usr/lib/postgresql/<version>/bin (Debian keeps them off PATH)."""
    on_path = shutil.which("pg_ctl")
    candidates = [Path(on_path).resolve().parent] if on_path else []
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += [Path(p) for p in sorted(versions, key=_version_key, reverse=True)]
    for directory in candidates:
        if all((directory / name).exists() for name in ("initdb", "pg_ctl", "postgres")):
            return directory
    raise ServerMissing(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found on PATH or in "
        "/usr/lib/postgresql/*/bin: run scripts/system-deps.sh (apt-get install postgresql)")


def _version_key(path: str) -> float:
    try:
        return float(Path(path).parent.name)
    except ValueError:
        return 0.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """One throwaway cluster. `restart(mode)` stops it (fast: clean; immediate: like a
    crash, recovery at start) and starts it again on the same port."""

    def __init__(self, settings: dict[str, str] | None = None, tls: bool = False) -> None:
        self.tls = tls
        self.bindir = find_bindir()
        self.root = Path(tempfile.mkdtemp(prefix="chappyd-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = free_port()
        self.settings = dict(FAST_SETTINGS if settings is None else settings)
        self._user = "postgres" if os.geteuid() == 0 else None
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self.root.chmod(0o755)

    # -- commands -----------------------------------------------------------------
    def _run(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / argv[0]), *argv[1:]]
        if self._user is not None:
            command = ["runuser", "-u", self._user, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                cwd=self.root)
        if result.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed ({result.returncode}): "
                               f"{result.stderr.strip() or result.stdout.strip()}\n"
                               f"{self.log_tail()}")
        return result

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def init(self) -> PostgresServer:
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust",
                  "-E", "UTF8", "--locale=C", "--no-sync")
        if self.tls:
            self._make_certificate()
        return self

    def _make_certificate(self) -> None:
        """A self-signed certificate in the data dir, where ssl=on looks by default."""
        openssl = shutil.which("openssl")
        if openssl is None:
            raise ServerMissing("openssl not found: the test server's TLS needs it "
                                "(apt-get install openssl)")
        key, cert = self.data / "server.key", self.data / "server.crt"
        subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                       check=True, capture_output=True, timeout=60)
        key.chmod(0o600)
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            for path in (key, cert):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self.settings["ssl"] = "on"

    def start(self) -> None:
        options = " ".join(
            [f"-p {self.port}", "-c listen_addresses=127.0.0.1",
             f"-c unix_socket_directories={self.root}"]
            + [f"-c {key}={value}" for key, value in self.settings.items()])
        self._run("pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data),
                  "-l", str(self.log), "-o", options)

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "stop", "-w", "-t", "60", "-D", str(self.data), "-m", mode)

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def destroy(self) -> None:
        with suppress(RuntimeError, subprocess.TimeoutExpired):  # not running
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    # -- databases ----------------------------------------------------------------
    def url(self, database: str = "postgres", password: str | None = None) -> str:
        auth = SUPERUSER if password is None else f"{SUPERUSER}:{password}"
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{database}"

    def admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(sql)

    def psql(self, database: str, sql: str) -> str:
        """Run `sql` with the psql client, as an outside producer would."""
        result = subprocess.run(
            [str(self.bindir / "psql"), "-X", "-v", "ON_ERROR_STOP=1", "-qAt",
             "-d", self.url(database), "-c", sql],
            capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise RuntimeError(f"psql failed: {result.stderr.strip()}")
        return result.stdout


def start_server(settings: dict[str, str] | None = None, tls: bool = False) -> PostgresServer:
    server = PostgresServer(settings, tls).init()
    try:
        server.start()
    except BaseException:
        server.destroy()
        raise
    return server


# ---------------------------------------------------------------- fixtures

_counter = itertools.count(1)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    try:
        server = start_server(tls=True)
    except ServerMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        _make_template(server)
        yield server
    finally:
        server.destroy()


def _make_template(server: PostgresServer) -> None:
    from chappyd.drivers.postgres import PostgresDriver
    from tests.conftest import settings_for

    server.admin(f"CREATE DATABASE {TEMPLATE_DB}")
    driver = PostgresDriver(settings_for({"QUEUE_DRIVER": "database",
                                          "DATABASE_URL": server.url(TEMPLATE_DB)}))
    driver.migrate()
    driver.close()


@pytest.fixture
def postgres_database(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh database with the schema migrated; its name."""
    name = f"chappy_test_{os.getpid()}_{next(_counter)}"
    postgres_server.admin(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB}")
    yield name
    deadline = time.monotonic() + 10
    while True:
        try:
            postgres_server.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            return
        except Exception:
            # the server may be restarting after a test that restarted it
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture
def empty_database(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh database without the chappyd schema; its name."""
    name = f"chappy_empty_{os.getpid()}_{next(_counter)}"
    postgres_server.admin(f"CREATE DATABASE {name}")
    yield name
    postgres_server.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def postgres_env(postgres_server: PostgresServer, postgres_database: str) -> dict[str, str]:
    return {"QUEUE_DRIVER": "database", "DATABASE_URL": postgres_server.url(postgres_database)}
