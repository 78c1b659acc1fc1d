"""push(conn=...): a job exists if and only if the caller's transaction commits.

The app here is what the docs show: a `users` table in the queue's own database, a
user inserted and a job pushed in one transaction of the app's own connection (sqlite3,
psycopg 3 or psycopg2). Whether the job exists is asked by another process
(`chappyctl show`), and real `chappyd` daemons run what was committed.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import psycopg.rows
import psycopg2
import psycopg2.extras
import pytest

from chappyd.drivers import open_driver
from chappyd.drivers.redis.driver import REFUSED_CONN
from tests.conftest import settings_for
from tests.e2e.conftest import E2E
from tests.e2e.ctl_helpers import ctl
from tests.e2e.tx_jobs import Stamped
from tests.procs import wait_until
from tests.servers.postgres import SUPERUSER, TEMPLATE_DB, PostgresServer, start_server

JOBS = "tests.e2e.jobs,tests.e2e.tx_jobs"
USERS_DDL = {
    "sqlite": "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL)",
    "postgres": "CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL)",
}
#: From a commit to the job's start in an idle worker (the issue's bound).
PICKUP_BOUND_S = 0.050


class App:
    """The application's side: its own DB-API connection, its own transactions."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def sql(self, statement: str) -> Any:
        cursor = self.conn.cursor()
        cursor.execute(statement)
        return cursor

    def register(self, email: str, e2e: E2E) -> tuple[int, str]:
        """The seed's example made safe: the user and its welcome job, one transaction."""
        (user_id,) = self.sql(
            f"INSERT INTO users (email) VALUES ('{email}') RETURNING id").fetchone()
        job_id = Stamped.dispatch({"user_id": user_id}, conn=self.conn, manager=e2e.manager)
        return user_id, job_id

    def users(self) -> list[str]:
        return [row[0] for row in self.sql("SELECT email FROM users ORDER BY id").fetchall()]


def open_app(backend: str, client: str, e2e: E2E) -> Any:
    if backend == "sqlite":
        return sqlite3.connect(str(e2e.settings.sqlite_path()))
    if client == "psycopg2":
        return psycopg2.connect(e2e.settings.database_url)
    return psycopg.connect(e2e.settings.database_url)


@pytest.fixture(params=["own-client", "psycopg2"])
def client(request: pytest.FixtureRequest, backend: str) -> str:
    if backend == "redis":
        pytest.skip("Redis refuses conn=: test_redis_refuses_conn")
    if backend == "sqlite" and request.param == "psycopg2":
        pytest.skip("psycopg2 is a PostgreSQL client")
    return "sqlite3" if backend == "sqlite" else request.param


@pytest.fixture
def app(e2e: E2E, backend: str, client: str) -> Iterator[App]:
    _ = e2e.driver  # the queue's schema exists
    setup = App(open_app(backend, client, e2e))
    setup.sql(USERS_DDL[backend])
    setup.conn.commit()
    yield setup
    setup.conn.close()


def shown(e2e: E2E, job_id: str) -> dict[str, Any] | None:
    """The job as another process sees it (`chappyctl show`), None when it does not exist."""
    result = ctl(e2e.env, "show", job_id, "--json")
    if result.returncode == 1 and result.stdout == "":
        assert job_id in result.stderr, result.stderr
        return None
    assert (result.returncode, result.stderr) == (0, ""), result
    return json.loads(result.stdout)


def start_times(e2e: E2E) -> dict[str, float]:
    return {event.job_id: float(event.name) for event in e2e.events("start")}


def test_a_job_exists_only_once_its_transaction_commits_and_then_runs(
        e2e: E2E, app: App) -> None:
    user_id, job_id = app.register("ada@example.com", e2e)
    assert shown(e2e, job_id) is None
    app.conn.commit()
    seen = shown(e2e, job_id)
    assert seen is not None
    assert (seen["state"], seen["job"], seen["payload"]["data"]) == (
        "ready", Stamped.name, {"user_id": user_id})
    status, _ = e2e.run("--stop-when-empty", CHAPPY_JOBS=JOBS)
    assert status == 0
    assert list(start_times(e2e)) == [job_id]
    assert shown(e2e, job_id) is None  # done and deleted
    assert app.users() == ["ada@example.com"]


def test_a_rolled_back_transaction_leaves_neither_user_nor_job(e2e: E2E, app: App) -> None:
    _, job_id = app.register("bob@example.com", e2e)
    app.conn.rollback()
    assert shown(e2e, job_id) is None
    assert [s.queue for s in e2e.driver.stats()] == []
    kept = e2e.manager.dispatch(Stamped, {"user_id": 0})  # a plain push, to run something
    status, _ = e2e.run("--stop-when-empty", CHAPPY_JOBS=JOBS)
    assert status == 0
    assert list(start_times(e2e)) == [kept]
    assert app.users() == []


def test_a_rolled_back_savepoint_takes_its_job_with_it(e2e: E2E, app: App) -> None:
    _, kept = app.register("cy@example.com", e2e)
    app.sql("SAVEPOINT second_user")
    _, dropped = app.register("dee@example.com", e2e)
    app.sql("ROLLBACK TO SAVEPOINT second_user")
    app.conn.commit()
    assert shown(e2e, dropped) is None
    assert shown(e2e, kept) is not None
    status, _ = e2e.run("--stop-when-empty", CHAPPY_JOBS=JOBS)
    assert status == 0
    assert list(start_times(e2e)) == [kept]
    assert app.users() == ["cy@example.com"]


def test_an_idle_worker_starts_the_job_within_50_ms_of_the_commit(
        e2e: E2E, app: App) -> None:
    daemon = e2e.start(CHAPPY_JOBS=JOBS, CHAPPY_WORKERS="1")
    daemon.wait_ready(1)
    time.sleep(0.3)  # the child is idle in wait() (LISTEN, or polling data_version)
    _, job_id = app.register("eve@example.com", e2e)
    time.sleep(0.2)  # long enough for a worker that wrongly woke before the commit
    assert start_times(e2e) == {}
    committing = time.time()  # the job may start before commit() has returned here
    app.conn.commit()
    wait_until(lambda: job_id in start_times(e2e), 5.0, "the committed job to start")
    latency = start_times(e2e)[job_id] - committing
    assert 0 <= latency < PICKUP_BOUND_S, f"started {latency * 1000:.1f} ms after the commit"


def test_a_push_many_and_push_on_the_callers_connection_commit_together(
        e2e: E2E, app: App) -> None:
    job = {"job": Stamped.name, "data": {}}
    ids = [*e2e.manager.push_many("mail", [job, job], conn=app.conn),
           e2e.manager.push("mail", json.dumps(job), conn=app.conn)]
    assert [shown(e2e, i) for i in ids] == [None, None, None]
    app.conn.commit()
    assert [shown(e2e, i)["queue"] for i in ids] == ["mail", "mail", "mail"]


def wrong_connections(backend: str, client: str, e2e: E2E, tmp_path: Path
                      ) -> list[tuple[Any, str]]:
    """(a connection that is not the queue's, the ValueError's exact message)."""
    if backend == "sqlite":
        queue_file = e2e.settings.sqlite_path()
        elsewhere = tmp_path / "elsewhere.sqlite3"
        closed = sqlite3.connect(str(queue_file))
        closed.close()
        return [
            (sqlite3.connect(str(elsewhere)),
             f"conn= is connected to {elsewhere}, the queue is in {queue_file}"),
            (sqlite3.connect(":memory:"),
             f"conn= is connected to :memory:, the queue is in {queue_file}"),
            (closed, "conn= cannot be used: Cannot operate on a closed database."),
            (str(queue_file), "conn= must be a sqlite3.Connection to the queue's file "
                              f"{queue_file}, not builtins.str"),
        ]
    url = e2e.settings.database_url
    here = url.rsplit("/", 1)[0]
    where = e2e.settings.backend_description
    queue_db = url.rsplit("/", 1)[1]
    closed = open_app(backend, client, e2e)
    closed.close()
    flavor = "psycopg2" if client == "psycopg2" else "psycopg"
    return [
        (open_app_at(client, f"{here}/postgres"),
         f"conn= reaches database 'postgres', which has no chappyd queue table "
         f"(the queue is {where})"),
        # the migrated template: a queue table, in another database of the same server
        (open_app_at(client, f"{here}/{TEMPLATE_DB}"),
         f"conn= is connected to database '{TEMPLATE_DB}', the queue is in "
         f"'{queue_db}' ({where})"),
        (closed, f"conn= is a closed {flavor} connection"),
        (sqlite3.connect(":memory:"),
         "conn= must be a psycopg 3 or psycopg2 connection to the queue's PostgreSQL "
         "database, not sqlite3.Connection (from a framework: pass its DB-API "
         "connection, see docs/transactions.md)"),
    ]


def open_app_at(client: str, url: str) -> Any:
    return psycopg2.connect(url) if client == "psycopg2" else psycopg.connect(url)


def test_a_connection_that_is_not_the_queues_is_refused_and_writes_nothing(
        e2e: E2E, app: App, backend: str, client: str, tmp_path: Path) -> None:
    for conn, message in wrong_connections(backend, client, e2e, tmp_path):
        with pytest.raises(ValueError) as refused:
            e2e.manager.push("default", {"job": Stamped.name}, conn=conn)
        assert str(refused.value) == message
        with contextlib.suppress(AttributeError):
            conn.close()
    assert e2e.driver.stats() == []
    # the app's own connection still works after all that
    _, job_id = app.register("fay@example.com", e2e)
    app.conn.commit()
    assert shown(e2e, job_id) is not None


def test_the_first_conn_push_into_a_store_without_schema_creates_it(
        backend: str, client: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if backend == "sqlite":
        env = {"QUEUE_DRIVER": "database", "DATABASE_URL": f"sqlite:///{tmp_path}/new.db"}
    else:
        server = request.getfixturevalue("postgres_server")
        env = {"QUEUE_DRIVER": "database",
               "DATABASE_URL": server.url(request.getfixturevalue("empty_database"))}
    world = E2E(env, tmp_path)
    conn = open_app(backend, client, world)
    try:
        job_id = world.manager.push("default", {"job": Stamped.name}, conn=conn)
        assert shown(world, job_id) is None
        conn.commit()
        assert shown(world, job_id)["state"] == "ready"
    finally:
        conn.close()
        world.cleanup()


@pytest.fixture(scope="module")
def second_server() -> Iterator[PostgresServer]:
    """Another PostgreSQL server, for a connection that reaches the wrong one."""
    server = start_server()
    yield server
    server.destroy()


def test_postgres_compares_servers_as_the_server_names_itself(
        e2e: E2E, app: App, backend: str, client: str, postgres_server: PostgresServer,
        request: pytest.FixtureRequest) -> None:
    if backend != "postgres":
        pytest.skip("PostgreSQL only: a server reached by another address")
    other: PostgresServer = request.getfixturevalue("second_server")
    queue_db = e2e.settings.database_url.rsplit("/", 1)[1]
    # the same server through its Unix socket instead of 127.0.0.1: accepted
    by_socket = open_app_at(client, f"host={postgres_server.root} port="
                                    f"{postgres_server.port} dbname={queue_db} user={SUPERUSER}")
    job_id = e2e.manager.push("default", {"job": Stamped.name}, conn=by_socket)
    by_socket.commit()
    by_socket.close()
    assert shown(e2e, job_id)["state"] == "ready"
    # another server with a migrated database of the same name: refused
    other.admin(f"CREATE DATABASE {queue_db}")
    lookalike = open_driver(settings_for({"QUEUE_DRIVER": "database",
                                          "DATABASE_URL": other.url(queue_db)}))
    lookalike.migrate()
    lookalike.close()
    elsewhere = open_app_at(client, other.url(queue_db))
    with pytest.raises(ValueError) as refused:
        e2e.manager.push("default", {"job": Stamped.name}, conn=elsewhere)
    elsewhere.close()
    assert str(refused.value) == (
        f"conn= is connected to another PostgreSQL server (port {other.port}) than the "
        f"queue's, {e2e.settings.backend_description}")
    assert [(s.queue, s.ready) for s in e2e.driver.stats()] == [("default", 1)]


def test_the_apps_row_factory_changes_nothing(e2e: E2E, app: App, client: str) -> None:
    """Apps often read rows as dicts; chappyd's statements on their connection must not."""
    if client == "sqlite3":
        app.conn.row_factory = lambda cursor, row: dict(
            zip([d[0] for d in cursor.description], row, strict=True))
    elif client == "psycopg2":
        app.conn.cursor_factory = psycopg2.extras.RealDictCursor
    else:
        app.conn.row_factory = psycopg.rows.dict_row
    ids = e2e.manager.push_many("default", [{"job": Stamped.name}] * 2, conn=app.conn)
    app.conn.commit()
    assert [shown(e2e, i)["id"] for i in ids] == ids
    assert sorted(int(i) for i in ids) == [int(ids[0]), int(ids[0]) + 1]


PRODUCER = """
import os, sqlite3, sys
import chappyd
url = os.environ["DATABASE_URL"]
if url.startswith("sqlite:"):
    conn = sqlite3.connect(url[len("sqlite:///"):])
else:
    import psycopg
    conn = psycopg.connect(url)
print(chappyd.dispatch("tests.e2e.tx_jobs.Stamped", {}, conn=conn), flush=True)
if sys.argv[1] == "commit":
    conn.commit()
else:
    os._exit(3)  # dies before its commit, as a killed web worker would
"""


def test_chappyd_dispatch_from_a_process_that_dies_before_its_commit_leaves_nothing(
        e2e: E2E, app: App, client: str) -> None:
    if client == "psycopg2":
        pytest.skip("the producer process uses psycopg 3")
    _ = app  # the schema exists

    def produce(how: str, status: int) -> str:
        ran = subprocess.run([sys.executable, "-c", PRODUCER, how], env=e2e.env,
                             capture_output=True, text=True, timeout=60)
        assert (ran.returncode, ran.stderr) == (status, "")
        return ran.stdout.strip()

    # one after the other: SQLite hands a rolled-back id out again
    assert shown(e2e, produce("die", 3)) is None
    assert [s.queue for s in e2e.driver.stats()] == []
    assert shown(e2e, produce("commit", 0))["state"] == "ready"


def test_redis_refuses_conn(e2e: E2E, backend: str, tmp_path: Path) -> None:
    if backend != "redis":
        pytest.skip("the SQL backends take conn=: the tests above")
    other = sqlite3.connect(str(tmp_path / "app.sqlite3"))
    for push in (lambda: Stamped.dispatch({}, conn=other, manager=e2e.manager),
                 lambda: e2e.manager.push_many("default", [], conn=other)):
        with pytest.raises(ValueError) as refused:
            push()
        assert str(refused.value) == REFUSED_CONN
    assert e2e.driver.stats() == []
    other.close()
