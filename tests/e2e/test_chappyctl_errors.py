"""chappyctl's failures: an unreachable or silent backend, bad config, malformed
command lines. Each is one line on stderr with its exit status, and changes nothing."""

from __future__ import annotations

import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .ctl_helpers import ctl, failed, push, snapshot

PASSWORD = "s3cr3t-pw"
#: docs/design.md §7: with the backend down, chappyctl answers within 10 s.
ANSWER_WITHIN_S = 10.0
COMMANDS = [["status"], ["failed"], ["show", "1"], ["retry", "--all"], ["flush"],
            ["push", "app.jobs.X"], ["pause", "q"], ["clear", "q", "--yes"], ["migrate"]]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def network_env(backend: str, port: int) -> tuple[dict[str, str], str]:
    """An environment naming a server on `port` (with a password), and the words the
    error must name it by."""
    if backend == "postgres":
        url = f"postgresql://app:{PASSWORD}@127.0.0.1:{port}/app"
        return {"DATABASE_URL": url}, f"PostgreSQL at postgresql://app:***@127.0.0.1:{port}/app"
    url = f"redis://:{PASSWORD}@127.0.0.1:{port}/0"
    return {"QUEUE_DRIVER": "redis", "REDIS_URL": url}, f"Redis at redis://:***@127.0.0.1:{port}/0"


@pytest.fixture
def down_env(backend: str, tmp_path: Path) -> tuple[dict[str, str], str]:
    if backend == "sqlite":
        path = "/dev/null/chappyd/queue.sqlite3"  # under a file: cannot be created
        return {"DATABASE_URL": f"sqlite:///{path}"}, f"SQLite database {path}"
    return network_env(backend, closed_port())


@pytest.fixture
def silent_env(backend: str, tmp_path: Path) -> Iterator[tuple[dict[str, str], str]]:
    """A backend that takes the connection and never answers."""
    if backend == "sqlite":
        # a database in rollback-journal mode held under an exclusive lock: opening it
        # waits on SQLite's busy timeout (10 s in the driver) inside C code
        path = tmp_path / "locked.sqlite3"
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("CREATE TABLE t (x)")
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute("INSERT INTO t VALUES (1)")
        # the driver's busy wait (10 s) would miss the contract: the deadline answers
        yield {"DATABASE_URL": f"sqlite:///{path}"}, f"SQLite database {path}"
        holder.close()
        return
    with socket.socket() as listener:  # listens, never accepts nor speaks
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield network_env(backend, listener.getsockname()[1])


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: a[0])
def test_backend_down_one_line_naming_it_exit_1(down_env, backend, args):
    env, name = down_env
    started = time.monotonic()
    result = ctl(env, *args)
    assert time.monotonic() - started < ANSWER_WITHIN_S
    assert (result.returncode, result.stdout) == (1, "")
    if backend == "sqlite" and args[0] in ("status", "failed", "show"):
        # looking opens the file read-only, without creating it: it is not there
        path = name.removeprefix("SQLite database ")
        assert result.stderr.startswith(f"chappyctl: error: no queue database at {path} ")
        assert result.stderr.count("\n") == 1
        return
    assert result.stderr.startswith(f"chappyctl: error: cannot reach {name}: ")
    assert result.stderr.count("\n") == 1
    assert PASSWORD not in result.stderr


def test_silent_backend_is_reported_within_10_s(silent_env):
    """A server that never answers: SQLite blocked in C on a lock, a TCP port that
    takes the connection and says nothing."""
    env, name = silent_env
    started = time.monotonic()
    result = ctl(env, "status", timeout=30)
    elapsed = time.monotonic() - started
    assert (result.returncode, result.stdout) == (1, ""), result.stderr
    # the driver's own connect timeout may answer first (libpq's connect_timeout);
    # otherwise chappyctl's 7 s deadline on the first contact does
    assert result.stderr.startswith(f"chappyctl: error: cannot reach {name}: ")
    assert result.stderr.count("\n") == 1 and PASSWORD not in result.stderr
    assert elapsed < ANSWER_WITHIN_S


def test_bad_config_is_78_and_names_key_and_source(backend_env, driver, tmp_path):
    job_id = failed(driver)
    before = snapshot(driver, [job_id])
    config = tmp_path / "bad.env"
    config.write_text("MAX_ATTEMPTS=lots\n")
    for args in (["--config", str(config), "retry", "--all"],
                 ["flush", "--config", str(config)]):
        result = ctl(backend_env, *args)
        assert (result.returncode, result.stdout) == (78, "")
        assert result.stderr == (f"chappyctl: error: MAX_ATTEMPTS='lots' (from {config}): "
                                 "must be a whole number\n")
    missing = ctl(backend_env, "--config", str(tmp_path / "nope.env"), "flush")
    assert missing.returncode == 78
    assert missing.stderr == (f"chappyctl: error: --config={str(tmp_path / 'nope.env')!r} "
                              "(from --config): file not found\n")
    assert snapshot(driver, [job_id]) == before


def test_world_readable_config_is_warned_about_once_when_it_holds_a_secret(backend_env,
                                                                           driver, tmp_path):
    config = tmp_path / "open.env"
    config.write_text("MAX_ATTEMPTS=3\nCHAPPY_WEB_TOKEN=s3cret\n")
    config.chmod(0o644)
    result = ctl(backend_env, "--config", str(config), "status", "--json")
    assert result.returncode == 0
    assert result.stderr == (f"chappyctl: warning: {config} is world-readable and holds a "
                             "password or token (chmod 0640)\n")
    config.write_text("MAX_ATTEMPTS=3\n")
    quiet = ctl(backend_env, "--config", str(config), "status", "--json")
    assert (quiet.returncode, quiet.stderr) == (0, "")


def test_config_may_follow_the_command(backend_env, driver, tmp_path):
    push(driver, "in-the-test-store")
    other = tmp_path / "other.env"
    other.write_text(f"DATABASE_URL=sqlite:///{tmp_path}/other.sqlite3\n")
    other.chmod(0o640)  # as /etc/chappyd.env is shipped: no world-readable warning
    # the environment names the test store; a file cannot override the environment,
    # so drop it from the environment to see --config at work
    env = {k: v for k, v in backend_env.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["QUEUE_DRIVER"] = "database"
    result = ctl(env, "status", "--json", "--config", str(other))
    # the file's database is the one looked at; looking does not create it
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (f"chappyctl: error: no queue database at {tmp_path}/other.sqlite3"
                             " (check DATABASE_URL; chappyd or `chappyctl migrate` creates it)\n")
    assert not (tmp_path / "other.sqlite3").exists()


@pytest.mark.parametrize(("args", "last_line"), [
    (["bogus"], "chappyctl: error: unknown command 'bogus'; see chappyctl --help"),
    (["fialed"], "chappyctl: error: unknown command 'fialed'; did you mean 'failed'?"),
    (["status", "--bogus"], "chappyctl status: error: unrecognized arguments: --bogus"),
    (["--bogus", "status"], "chappyctl: error: unrecognized arguments: --bogus"),
    (["show"], "chappyctl show: error: the following arguments are required: ID"),
    (["queue:migration", "--driver", "mysql"], "chappyctl queue:migration: error: argument "
     "--driver: invalid choice: 'mysql' (choose from 'postgres', 'sqlite')"),
])
def test_malformed_command_lines_exit_2(backend_env, driver, args, last_line):
    job_id = failed(driver)
    before = snapshot(driver, [job_id])
    result = ctl(backend_env, *args)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines()[-1] == last_line
    assert snapshot(driver, [job_id]) == before


def test_no_command_prints_help_and_exits_2(backend_env):
    result = ctl(backend_env)
    assert result.returncode == 2
    assert "commands:" in result.stderr and "queue:failed" in result.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["failed", "--limit", "many"], "--limit='many': must be a whole number"),
    (["failed", "--limit", "0"], "--limit='0': must be at least 1"),
    (["failed", "--queue", "a b"], "--queue='a b': invalid queue name 'a b'"),
    (["flush", "--queue", "{x}"], "--queue='{x}': invalid queue name '{x}'"),
    (["status", "--queue", ""], "--queue='': invalid queue name ''"),
    (["clear", "a b", "--yes"], "QUEUE='a b': invalid queue name 'a b'"),
    (["pause", "a{b}"], "QUEUE='a{b}': invalid queue name 'a{b}'"),
])
def test_invalid_values_exit_1_and_change_nothing(backend_env, driver, args, message):
    """An argument's bad value is the operator's typo: exit 1 naming it. 78 is kept for
    the configuration (files, environment), which a restart cannot fix."""
    job_id = failed(driver)
    before = snapshot(driver, [job_id])
    result = ctl(backend_env, *args)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.startswith(f"chappyctl: error: {message}")
    assert result.stderr.count("\n") == 1
    assert snapshot(driver, [job_id]) == before



@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_missing_schema_with_auto_migrate_off_says_to_migrate(store, request, tmp_path):
    if store == "sqlite":
        (tmp_path / "fresh.sqlite3").touch()  # a file with no schema in it
        env = {"DATABASE_URL": f"sqlite:///{tmp_path}/fresh.sqlite3"}
    else:
        server = request.getfixturevalue("postgres_server")
        env = {"DATABASE_URL": server.url(request.getfixturevalue("empty_database"))}
    result = ctl({**env, "CHAPPY_AUTO_MIGRATE": "0"}, "status")
    assert result.returncode == 1
    assert result.stderr.startswith("chappyctl: error: ")
    assert "has no chappyd schema" in result.stderr
    assert "run `chappyctl migrate`, or set CHAPPY_AUTO_MIGRATE=1" in result.stderr
    assert len(result.stderr.splitlines()) == 1
