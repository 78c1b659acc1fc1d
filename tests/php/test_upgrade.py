"""Existing chappyd databases upgrade to string-accepting times: every row and time
kept, and a row stored with a string time before the upgrade (the crash loop of old)
becomes unix seconds or fails as InvalidPayload."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import psycopg

from chappyd.drivers.postgres.driver import MIGRATIONS
from chappyd.drivers.postgres.driver import Q as PG
from chappyd.drivers.sqlite import SqliteDriver
from chappyd.drivers.sqlite.driver import Q as SQLITE
from tests.conftest import settings_for
from tests.pg.helpers import pg_driver

PAYLOAD = '{"job": "app.jobs.Mail", "data": {}}'
TUESDAY = ("InvalidPayload: available_at 'next tuesday' is not a time "
           "(unix seconds, 'Y-m-d H:i:s' or ISO 8601 UTC)")


def _sqlite_v1(path: Path) -> None:
    """chappyd's SQLite schema before the time triggers, with rows as it allowed."""
    conn = sqlite3.connect(path)
    conn.executescript(SQLITE["schema"])
    conn.executemany("INSERT INTO queue (queue, payload, available_at) VALUES ('default', ?, ?)",
                     [(PAYLOAD, 1796212800.25), (PAYLOAD, "2026-12-02 12:00:01"),
                      (PAYLOAD, "next tuesday")])
    conn.commit()
    conn.close()


def test_an_old_sqlite_database_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    _sqlite_v1(path)
    driver = SqliteDriver(settings_for({"DATABASE_URL": f"sqlite:///{path}"}))
    assert driver.migrate() is None  # nothing adopted: it was chappyd's already
    first, second, bad = (driver.get(i) for i in ("1", "2", "3"))
    assert (first.available_at, first.state) == (1796212800.25, "ready")
    assert (second.available_at, second.state) == (1796212801.0, "ready")
    assert (bad.state, bad.attempts, bad.exception) == ("failed", 1, TUESDAY)
    driver.wait(["default"], 0.01)  # no arithmetic on a string any more
    assert [r.id for r in driver.reserve(["default"], "h:1:2", 30, 5)] == ["1", "2"]
    driver.close()


def test_an_old_postgres_database_keeps_its_times(postgres_server, empty_database) -> None:
    url = postgres_server.url(empty_database)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(PG["migrations_table"])
        conn.execute(dict(MIGRATIONS)[1])
        conn.execute(PG["record_migration"], {"version": 1})
        now = time.time()
        for at in (1796212800.125, now + 3600):
            conn.execute("INSERT INTO queue (queue, payload, available_at) VALUES "
                         "('default', %s, %s)", (PAYLOAD, at))
    driver = pg_driver({"QUEUE_DRIVER": "database", "DATABASE_URL": url})
    assert driver.migrate() is None
    ready, delayed = driver.get("1"), driver.get("2")
    assert (ready.available_at, ready.state) == (1796212800.125, "ready")
    assert (delayed.available_at, delayed.state) == (now + 3600, "delayed")
    postgres_server.psql(empty_database,
                         "INSERT INTO queue (queue, payload, available_at, attempts, created_at,"
                         f" updated_at) VALUES ('default', '{PAYLOAD}', '2026-12-02 12:00:01', 0,"
                         " '2026-12-02 12:00:01', '2026-12-02 12:00:01'),"
                         f" ('default', '{PAYLOAD}', 'next tuesday', 0, '2026-12-02 12:00:01',"
                         " '2026-12-02 12:00:01'),"
                         f" ('default', '{PAYLOAD}', 1796212802, 0, 1796212802, 1796212802)")
    from_php, bad, seed = driver.get("3"), driver.get("4"), driver.get("5")
    assert (from_php.available_at, from_php.created_at) == (1796212801.0, 1796212801.0)
    assert (bad.state, bad.attempts, bad.exception) == ("failed", 1, TUESDAY)
    assert (seed.available_at, seed.state) == (1796212802.0, "ready")
    assert [r.id for r in driver.reserve(["default"], "h:1:2", 30, 5)] == ["1", "3", "5"]
    driver.close()
