"""No statement of chappyd's is JIT-compiled, on a direct connection or behind PgBouncer.

PostgreSQL JIT-compiles a statement whose plan costs more than jit_above_cost, anew on
every run. Some of chappyd's plans are costed far above it (a subplan's disabled seq
scan adds 1e10) while touching a few rows: a master's lease expiry every 4 s and the
give-backs of a drain cost 200-600 ms of server CPU each. Here the server compiles
every plan (jit_above_cost = 0), and pg_stat_statements counts what it compiled.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import psycopg
import pytest

from chappyd.drivers.base import NewJob
from chappyd.drivers.postgres import PostgresDriver
from tests.conftest import settings_for
from tests.servers.pgbouncer import PgBouncer
from tests.servers.postgres import FAST_SETTINGS, PostgresServer, start_server

DATABASE = "chappy_jit"
OWNER = "h:1:2"
#: every plan compiled, cheaply (no inlining, no optimisation passes)
JIT_EVERYTHING = {**FAST_SETTINGS, "shared_preload_libraries": "pg_stat_statements",
                  "jit": "on", "jit_above_cost": "0", "jit_inline_above_cost": "-1",
                  "jit_optimize_above_cost": "-1"}


@pytest.fixture(scope="module")
def jit_server() -> Iterator[PostgresServer]:
    server = start_server(settings=JIT_EVERYTHING)
    try:
        server.admin(f"CREATE DATABASE {DATABASE}")
        with psycopg.connect(server.url(DATABASE), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION pg_stat_statements")
        driver = PostgresDriver(settings_for(_env(server.url(DATABASE))))
        driver.migrate()
        driver.close()
        yield server
    finally:
        server.destroy()


def _env(url: str) -> dict[str, str]:
    return {"QUEUE_DRIVER": "database", "DATABASE_URL": url}


def _reset_counts(server: PostgresServer) -> None:
    with psycopg.connect(server.url(DATABASE), autocommit=True) as conn:
        conn.execute("SET jit = off")
        conn.execute("TRUNCATE queue")
        conn.execute("SELECT pg_stat_statements_reset()")


#: the first statement of a connection, which finds out whether a pooler is in between
#: and so comes before any setting: a plan of no cost, never compiled by a real server
POOLER_PROBE = "SELECT inet_server_port()"


def _compiled(server: PostgresServer) -> list[tuple[str, int]]:
    """(the statement's first line, functions compiled) for each statement compiled,
    but the pooler probe."""
    with psycopg.connect(server.url(DATABASE), autocommit=True) as conn:
        conn.execute("SET jit = off")
        rows = conn.execute("SELECT query, jit_functions FROM pg_stat_statements"
                            " WHERE jit_functions > 0 AND query <> %s ORDER BY query",
                            [POOLER_PROBE]).fetchall()
    return [(query.strip().splitlines()[0], functions) for query, functions in rows]


def _push(driver: PostgresDriver, count: int) -> None:
    now = time.time()
    driver.push_many("default", [NewJob(json.dumps({"job": "x", "n": i}), now)
                                 for i in range(count)])


def _work(driver: PostgresDriver) -> None:
    """What a child and a master send: claims, acks, retries, failures, give-backs,
    lease renewal and expiry, a dead child's jobs taken back."""
    first = driver.reserve(["default"], OWNER, 30, 4)
    acked, second = driver.ack_and_reserve(first[:2], ["default"], OWNER, 30, 4)
    assert acked == 2 and len(second) == 4
    assert driver.ack_many(second[:2]) == 2
    assert driver.ack(first[2])
    assert driver.retry(first[3], time.time(), "RuntimeError: again")
    assert driver.fail(second[2], "RuntimeError: no")
    assert driver.extend_leases([OWNER], 30) == 1
    assert [r.id for r in driver.held_by(OWNER)] == [second[3].id]
    assert driver.release([second[3]]) == 1
    assert len(driver.reserve(["default"], OWNER, 30, 2)) == 2
    assert driver.release_owner(OWNER) == 2
    assert driver.expire_leases() == 0
    assert driver.has_work(["default"])


def test_the_server_compiles_every_plan_of_a_plain_connection(jit_server):
    # without this, the tests below could not fail
    _reset_counts(jit_server)
    with psycopg.connect(jit_server.url(DATABASE), autocommit=True) as conn:
        conn.execute("SELECT count(*) FROM queue WHERE attempts > 0").fetchone()
    assert [line for line, _ in _compiled(jit_server)] == [
        "SELECT count(*) FROM queue WHERE attempts > $1"]


def test_a_direct_connection_compiles_nothing(jit_server):
    _reset_counts(jit_server)
    driver = PostgresDriver(settings_for(_env(jit_server.url(DATABASE))))
    _push(driver, 12)
    _work(driver)
    driver.stats()
    driver.close()
    assert _compiled(jit_server) == []


def test_behind_pgbouncer_the_workers_and_masters_statements_compile_nothing(jit_server):
    _reset_counts(jit_server)
    direct = PostgresDriver(settings_for(_env(jit_server.url(DATABASE))))
    _push(direct, 12)  # behind a pooler a push keeps the server's JIT setting
    direct.close()
    bouncer = PgBouncer(jit_server, pool_size=1)
    bouncer.start()
    try:
        driver = PostgresDriver(settings_for(_env(bouncer.url(DATABASE))))
        _work(driver)
        assert driver._session.pooled  # the pooled paths ran
        driver.close()
    finally:
        bouncer.stop()
    assert _compiled(jit_server) == []
