"""Migrations: idempotent, safe to run from many processes at once, and the printed
schema (`chappyctl queue:migration`) is what migrate() builds."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from chappyd.drivers.base import NewJob
from chappyd.drivers.postgres.driver import LATEST
from chappyd.errors import BackendUnavailable

from .helpers import pg_driver

CATALOG = """
SELECT 'column', c.table_name || '.' || c.column_name || ' ' || c.data_type || ' '
       || c.is_nullable || ' ' || coalesce(c.column_default, '')
  FROM information_schema.columns c WHERE c.table_schema = 'public'
UNION ALL SELECT 'index', indexdef FROM pg_indexes WHERE schemaname = 'public'
UNION ALL SELECT 'trigger', tgname || ' ' || pg_get_triggerdef(oid)
  FROM pg_trigger WHERE NOT tgisinternal
UNION ALL SELECT 'options', array_to_string(reloptions, ',') FROM pg_class
 WHERE relname = 'queue'
UNION ALL SELECT 'version', version::text FROM queue_migrations
ORDER BY 1, 2
"""


def _env(server, database):
    return {"QUEUE_DRIVER": "database", "DATABASE_URL": server.url(database)}


def _catalog(server, database) -> list[tuple[str, str]]:
    with psycopg.connect(server.url(database)) as conn:
        return conn.execute(CATALOG).fetchall()


def test_migrate_twice_is_harmless(postgres_server, empty_database):
    driver = pg_driver(_env(postgres_server, empty_database))
    driver.migrate()
    first = _catalog(postgres_server, empty_database)
    driver.migrate()
    assert _catalog(postgres_server, empty_database) == first
    assert ("version", str(LATEST)) in first
    driver.close()


def test_concurrent_migrations_all_succeed(postgres_server, empty_database):
    env = _env(postgres_server, empty_database)
    drivers = [pg_driver(env) for _ in range(6)]
    errors: list[BaseException] = []
    start = threading.Barrier(len(drivers))

    def migrate(driver) -> None:
        start.wait()
        try:
            driver.migrate()
        except BaseException as exc:  # collected and reported below
            errors.append(exc)

    threads = [threading.Thread(target=migrate, args=(d,)) for d in drivers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    versions = [row for row in _catalog(postgres_server, empty_database) if row[0] == "version"]
    assert versions == [("version", str(v)) for v in range(1, LATEST + 1)]
    for driver in drivers:
        driver.close()


def test_the_printed_schema_is_what_migrate_builds(postgres_server, empty_database,
                                                   postgres_database):
    schema = pg_driver(_env(postgres_server, empty_database)).schema_sql()
    assert "IF NOT EXISTS" in schema
    postgres_server.psql(empty_database, schema)
    postgres_server.psql(empty_database, schema)  # idempotent, as docs/design.md §7 asks
    assert _catalog(postgres_server, empty_database) == _catalog(postgres_server,
                                                                 postgres_database)


def test_a_schema_applied_by_hand_is_accepted_without_ddl_rights(postgres_server,
                                                                 empty_database):
    schema = pg_driver(_env(postgres_server, empty_database)).schema_sql()
    postgres_server.psql(empty_database, schema)
    postgres_server.psql(empty_database, "CREATE ROLE app LOGIN; "
                         "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public "
                         "TO app; REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    url = postgres_server.url(empty_database).replace("chappy@", "app@")
    driver = pg_driver({"QUEUE_DRIVER": "database", "DATABASE_URL": url})
    try:
        driver.migrate()  # up to date: no lock, no DDL
        job_id = driver.push_many("default", [NewJob('{"job": "x"}', time.time())])[0]
        assert driver.ack(driver.reserve(["default"], "h:1:2", 30, 1)[0])
        assert driver.get(job_id) is None
    finally:
        driver.close()
        postgres_server.psql(empty_database, "DROP OWNED BY app; DROP ROLE app")


def test_without_auto_migrate_a_missing_schema_is_one_line(postgres_server, empty_database):
    driver = pg_driver(_env(postgres_server, empty_database), CHAPPY_AUTO_MIGRATE="0")
    with pytest.raises(BackendUnavailable) as caught:
        driver.stats()
    message = str(caught.value)
    assert "\n" not in message and 'relation "queue" does not exist' in message
    driver.close()
