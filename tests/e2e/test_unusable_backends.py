"""Backends that can never work are configuration errors (one line, exit 78), not
outages to wait out; inspection commands create nothing and migrate nothing; the
SQLite file is created 0640 and a locked one answers within 10 s."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from chappyd.drivers import open_driver
from tests.conftest import settings_for

from .ctl_helpers import BIN, ctl, environ

INSPECTION = [["status"], ["failed"], ["show", "1"], ["failed", "--json"]]


def chappyd(env: dict[str, str], *args: str, timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "chappyd"), *args], env=environ(env), capture_output=True,
                          text=True, timeout=timeout)


def never_works(path: str, reason: str) -> str:
    return f"SQLite database {path} can never work: {reason}\n"


@pytest.fixture
def unusable(request, tmp_path: Path) -> tuple[str, str]:
    """An SQLite path that can never serve, and the reason chappyd gives."""
    kind = request.param
    if kind == "directory":
        return str(tmp_path), f"{tmp_path} is a directory, not a database file"
    if kind == "not sqlite":
        path = tmp_path / "notes.txt"
        path.write_text("these are not the jobs you are looking for\n" * 10)
        return str(path), f"{path} is not an SQLite database"
    raise AssertionError(kind)


KINDS = ["directory", "not sqlite"]


@pytest.mark.parametrize("unusable", KINDS, indirect=True)
@pytest.mark.parametrize("args", [["push", "x.Y"], ["status"], ["migrate"]], ids=str)
def test_chappyctl_on_an_sqlite_path_that_can_never_work_exits_78(unusable, args):
    path, reason = unusable
    before = sorted(Path(path).parent.rglob("*")) if Path(path).parent.exists() else None
    result = ctl({"DATABASE_URL": f"sqlite:///{path}"}, *args)
    assert (result.returncode, result.stdout) == (78, "")
    assert result.stderr == f"chappyctl: error: {never_works(path, reason)}"
    if before is not None:
        assert sorted(Path(path).parent.rglob("*")) == before  # nothing created


@pytest.mark.parametrize("unusable", KINDS, indirect=True)
def test_the_daemon_exits_78_instead_of_waiting(unusable):
    path, reason = unusable
    started = time.monotonic()
    result = chappyd({"DATABASE_URL": f"sqlite:///{path}"}, "--workers=1")
    assert time.monotonic() - started < 10
    assert result.returncode == 78
    assert result.stderr.endswith(f"chappyd: error: {never_works(path, reason)}")
    assert "backend_unavailable" not in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("unusable", KINDS, indirect=True)
def test_check_config_refuses_what_it_can_see(unusable):
    path, reason = unusable
    result = chappyd({"DATABASE_URL": f"sqlite:///{path}"}, "--check-config")
    assert (result.returncode, result.stdout) == (78, "")
    assert result.stderr == f"chappyd: error: {never_works(path, reason)}"


def _unprivileged(command: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """`command ARGS` as this user, or as nobody when the tests run as root (CI does):
    root writes any file, so only an unprivileged user meets the refusal."""
    argv = [str(BIN / command), *args]
    if os.geteuid() == 0:
        argv = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *argv]
        env = {**env, "CHAPPY_CONFIG": "/dev/null"}  # the suite's own is root's alone
    return subprocess.run(argv, env=environ(env), capture_output=True, text=True, timeout=30)


@pytest.fixture
def open_dir() -> Path:
    """A directory every user may enter (pytest's tmp_path is root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="chappyd-unusable-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_a_read_only_file_can_never_work(open_dir):
    path = open_dir / "q.sqlite3"
    open_driver(settings_for({"DATABASE_URL": f"sqlite:///{path}"})).migrate()
    path.chmod(0o444)
    result = _unprivileged("chappyctl", {"DATABASE_URL": f"sqlite:///{path}"}, "push", "x.Y")
    assert (result.returncode, result.stdout) == (78, "")
    reason = f"{path} is read-only for this user"
    assert result.stderr == f"chappyctl: error: {never_works(str(path), reason)}"


def test_a_directory_it_may_not_write_can_never_work(open_dir):
    locked = open_dir / "locked"
    locked.mkdir(mode=0o555)
    path = locked / "q.sqlite3"
    result = _unprivileged("chappyd", {"DATABASE_URL": f"sqlite:///{path}"}, "--check-config")
    reason = f"cannot create {path}: {locked} is not writable for this user"
    assert (result.returncode, result.stdout) == (78, "")
    assert result.stderr == f"chappyd: error: {never_works(str(path), reason)}"


@pytest.mark.parametrize(("url", "problem"), [
    ("sqlite:///:memory:", "an in-memory SQLite database is private to one process: "
     "chappyctl's pushes would vanish; use a file path"),
    ("sqlite:////", "'/' is a directory; name the database file"),
    ("sqlite:///var/lib/", "'var/lib/' is a directory; name the database file"),
    ("postgresql://app@127.0.0.1:99999/app", "port '99999' is not a number from 1 to 65535"),
    ("postgresql://app@127.0.0.1:abc/app", "port 'abc' is not a number from 1 to 65535"),
    ("postgresql://app:pw@h1:5432,h2:0/app", "port '0' is not a number from 1 to 65535"),
])
@pytest.mark.parametrize("program", ["chappyctl push x.Y", "chappyd --check-config"])
def test_a_url_that_can_never_work_is_refused_at_config_load(url, problem, program, tmp_path):
    name, *args = program.split()
    result = subprocess.run([str(BIN / name), *args], env=environ({"DATABASE_URL": url}),
                            capture_output=True, text=True, timeout=20, cwd=tmp_path)
    shown = url.replace(":pw@", ":***@")
    assert (result.returncode, result.stdout) == (78, "")
    assert result.stderr == (f"{name}: error: DATABASE_URL={shown!r} (from environment): "
                             f"{problem}\n")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("url", ["redis://127.0.0.1:99999/0", "redis://127.0.0.1:x/0"])
def test_a_redis_port_out_of_range_is_refused(url):
    result = ctl({"QUEUE_DRIVER": "redis", "REDIS_URL": url}, "status")
    port = url.split(":")[2].split("/")[0]
    assert (result.returncode, result.stdout) == (78, "")
    assert result.stderr == (f"chappyctl: error: REDIS_URL={url!r} (from environment): "
                             f"port {port!r} is not a number from 1 to 65535\n")


@pytest.mark.parametrize("args", INSPECTION, ids=str)
def test_inspection_of_a_typod_sqlite_path_creates_nothing(args, tmp_path):
    path = tmp_path / "typo" / "deeper" / "queue.sqlite3"
    result = ctl({"DATABASE_URL": f"sqlite:///{path}"}, *args)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (f"chappyctl: error: no queue database at {path} (check "
                             "DATABASE_URL; chappyd or `chappyctl migrate` creates it)\n")
    assert list(tmp_path.iterdir()) == []


def test_inspection_of_an_existing_sqlite_file_writes_nothing(tmp_path):
    path = tmp_path / "q.sqlite3"
    sqlite3.connect(path).close()  # an empty file: no schema
    result = ctl({"DATABASE_URL": f"sqlite:///{path}"}, "status")
    assert result.returncode == 1 and "has no chappyd schema" in result.stderr
    assert "`chappyctl migrate`" in result.stderr and len(result.stderr.splitlines()) == 1
    assert path.stat().st_size == 0  # not migrated by looking
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q.sqlite3"]


@pytest.mark.parametrize("args", INSPECTION, ids=str)
def test_inspection_never_migrates_postgresql(args, postgres_server, empty_database):
    env = {"DATABASE_URL": postgres_server.url(empty_database)}  # CHAPPY_AUTO_MIGRATE on
    result = ctl(env, *args)
    assert (result.returncode, result.stdout) == (1, "")
    assert "has no chappyd schema" in result.stderr and "`chappyctl migrate`" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    import psycopg

    with psycopg.connect(postgres_server.url(empty_database)) as conn:
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        assert tables.fetchone()[0] == 0


def test_the_sqlite_file_is_created_0640(tmp_path):
    path = tmp_path / "new" / "q.sqlite3"
    result = subprocess.run(
        ["sh", "-c", f"umask 022 && exec {BIN / 'chappyctl'} push x.Y"],
        env=environ({"DATABASE_URL": f"sqlite:///{path}"}), capture_output=True, text=True,
        timeout=20)
    assert result.returncode == 0, result.stderr
    assert path.stat().st_mode & 0o777 == 0o640
    for side in ("-wal", "-shm"):
        extra = Path(f"{path}{side}")
        if extra.exists():
            assert extra.stat().st_mode & 0o777 == 0o640


def test_a_locked_sqlite_file_answers_within_10_s(tmp_path):
    path = tmp_path / "q.sqlite3"
    open_driver(settings_for({"DATABASE_URL": f"sqlite:///{path}"})).migrate()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA journal_mode = WAL")
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    try:
        started = time.monotonic()
        result = ctl({"DATABASE_URL": f"sqlite:///{path}"}, "push", "x.Y")
        took = time.monotonic() - started
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert took < 10, took
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (f"chappyctl: error: cannot reach SQLite database {path}: "
                             "database is locked\n")
    assert open_driver(settings_for({"DATABASE_URL": f"sqlite:///{path}"})).stats() == []
