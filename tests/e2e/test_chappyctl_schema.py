"""`chappyctl queue:migration`, `migrate` and `make:job`."""

from __future__ import annotations

import sqlite3
import subprocess

import pytest

from tests.conftest import BACKENDS

from .ctl_helpers import BIN, ctl, environ

SQL_BACKENDS = [b for b in BACKENDS if b in ("sqlite", "postgres")]


def apply_by_hand(backend_env: dict[str, str], sql: str) -> None:
    """What an operator does with psql or sqlite3 and the printed schema."""
    url = backend_env["DATABASE_URL"]
    if url.startswith("sqlite:"):
        with sqlite3.connect(url[len("sqlite:///"):]) as conn:
            conn.executescript(sql)
    else:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql)


@pytest.fixture
def sql_env(backend, backend_env):
    if backend not in SQL_BACKENDS:
        pytest.skip(f"{backend} has no SQL schema (see test_migration_under_redis_exits_1)")
    return backend_env


def test_migration_prints_idempotent_sql_for_the_configured_database(sql_env):
    result = ctl(sql_env, "queue:migration")
    assert (result.returncode, result.stderr) == (0, "")
    creates = [line for line in result.stdout.splitlines()
               if line.startswith(("CREATE TABLE", "CREATE INDEX", "CREATE UNIQUE"))]
    assert any(line.startswith("CREATE TABLE IF NOT EXISTS queue ") for line in creates)
    assert all("IF NOT EXISTS" in line for line in creates)
    # the rest (functions, triggers) is proven idempotent by applying it twice below


def test_a_schema_applied_by_hand_is_accepted_and_works(sql_env):
    env = {**sql_env, "CHAPPY_AUTO_MIGRATE": "0"}
    apply_by_hand(env, ctl(env, "queue:migration").stdout)
    apply_by_hand(env, ctl(env, "queue:migration").stdout)  # twice: idempotent
    result = ctl(env, "migrate")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith("schema up to date: ")
    # the seed's plain INSERT is enough to enqueue (docs/design.md §4)
    apply_by_hand(env, "INSERT INTO queue (queue, payload) VALUES "
                       "('default', '{\"job\": \"app.jobs.X\", \"data\": {}}')")
    pushed = ctl(env, "push", "app.jobs.Y")
    assert pushed.returncode == 0, pushed.stderr
    status = ctl(env, "status", "--json")
    assert status.returncode == 0, status.stderr
    assert '"ready": 2' in status.stdout


def test_migrate_is_idempotent_on_an_existing_schema(backend_env):
    env = {**backend_env, "CHAPPY_AUTO_MIGRATE": "0"}
    for _ in range(2):
        result = ctl(env, "migrate")
        assert (result.returncode, result.stderr) == (0, ""), result
    assert ctl(env, "push", "app.jobs.X").returncode == 0


def test_migrate_creates_the_schema_when_auto_migrate_is_off(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/fresh.sqlite3", "CHAPPY_AUTO_MIGRATE": "0"}
    before = ctl(env, "status")
    assert (before.returncode, before.stdout) == (1, "")
    assert before.stderr.startswith("chappyctl: error: ") and before.stderr.count("\n") == 1
    result = ctl(env, "migrate")
    assert (result.returncode, result.stderr) == (0, ""), result
    assert result.stdout == f"schema up to date: SQLite database {tmp_path}/fresh.sqlite3\n"
    assert ctl(env, "status").returncode == 0


@pytest.mark.parametrize("dialect", SQL_BACKENDS)
def test_driver_flag_prints_another_dialect_without_connecting(tmp_path, dialect):
    env = {"QUEUE_DRIVER": "redis", "REDIS_URL": "redis://127.0.0.1:1/0",
           "DATABASE_URL": f"sqlite:///{tmp_path}/unused.sqlite3"}
    result = ctl(env, "queue:migration", "--driver", dialect)
    assert (result.returncode, result.stderr) == (0, "")
    assert "CREATE TABLE IF NOT EXISTS queue" in result.stdout
    assert not (tmp_path / "unused.sqlite3").exists()


def test_migration_under_redis_exits_1_with_one_line():
    result = ctl({"QUEUE_DRIVER": "redis", "REDIS_URL": "redis://127.0.0.1:1/0"},
                 "queue:migration")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == ("chappyctl: error: the Redis backend has no SQL schema (its keys "
                             "need none); use --driver postgres|sqlite for a database's\n")


# ---------------------------------------------------------------- make:job


def test_make_job_writes_a_runnable_job_in_the_seeds_shape(tmp_path, sqlite_env):
    result = ctl(sqlite_env, "make:job", "SendWelcomeEmail", "--dir", "app/jobs",
                 cwd=tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (
        0, "app/jobs/send_welcome_email.py\n", "")
    text = (tmp_path / "app/jobs/send_welcome_email.py").read_text()
    assert "class SendWelcomeEmail(Job):" in text
    for method in ("handle", "backoff", "delay", "max_attempts", "to_payload"):
        assert f"def {method}(self)" in text
    assert "chappyctl push app.jobs.send_welcome_email.SendWelcomeEmail" in text
    lint = subprocess.run([str(BIN / "ruff"), "check", "--isolated", "--line-length=100",
                           "--select=E,F,W,I,B,UP", str(tmp_path / "app")],
                          capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout
    env = {**sqlite_env, "CHAPPY_JOBS": "app.jobs", "PYTHONPATH": str(tmp_path)}
    job = "app.jobs.send_welcome_email.SendWelcomeEmail"
    pushed = ctl(env, "push", job, "--data", '{"user_id": 42}', cwd=tmp_path)
    assert pushed.returncode == 0, pushed.stderr  # registered: no --force needed
    ran = subprocess.run([str(BIN / "chappyd"), "--once"], capture_output=True, text=True,
                         cwd=tmp_path, env=environ(env), timeout=30)
    assert ran.returncode == 0, ran.stderr
    assert '"event": "job_done"' in ran.stderr
    assert ctl(env, "show", pushed.stdout.strip()).returncode == 1  # done and deleted


@pytest.mark.parametrize(("name", "path"), [("HTTPPing", "http_ping.py"),
                                            ("Job2FA", "job2_fa.py"),
                                            ("Mail", "mail.py")])
def test_make_job_file_names_are_snake_case(tmp_path, sqlite_env, name, path):
    result = ctl(sqlite_env, "make:job", name, "--dir", str(tmp_path / "jobs"))
    assert (result.returncode, result.stdout) == (0, f"{tmp_path / 'jobs' / path}\n")


def test_make_job_never_overwrites(tmp_path, sqlite_env):
    target = tmp_path / "send_mail.py"
    target.write_text("# mine\n")
    result = ctl(sqlite_env, "make:job", "SendMail", "--dir", str(tmp_path))
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == f"chappyctl: error: {target} already exists; not overwriting it\n"
    assert target.read_text() == "# mine\n"


@pytest.mark.parametrize("name", ["send_mail", "Send-Mail", "None", "1Job"])
def test_make_job_refuses_a_name_that_is_not_a_class_name(tmp_path, sqlite_env, name):
    result = ctl(sqlite_env, "make:job", name, "--dir", str(tmp_path))
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (f"chappyctl: error: Name={name!r}: must be a Python "
                             "class name in CamelCase, e.g. SendWelcomeEmail\n")
    assert list(tmp_path.iterdir()) == []


def test_make_job_needs_no_working_configuration(tmp_path):
    bad = tmp_path / "bad.env"
    bad.write_text("MAX_ATTEMPTS=lots\n")
    result = ctl({}, "--config", str(bad), "make:job", "Mail", "--dir", str(tmp_path / "j"))
    assert result.returncode == 0, result.stderr
