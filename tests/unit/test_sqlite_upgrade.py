"""A SQLite file of schema version 3 (before unique jobs and limits) is upgraded in
place on first use: the columns it lacks are added once, its jobs kept."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from chappyd.drivers.base import ExistingId, NewJob
from chappyd.drivers.sqlite.driver import SqliteDriver
from chappyd.drivers.sqlite.migrate import SCHEMA_VERSION

from ..conftest import settings_for

NEW_COLUMNS = ["unique_key", "unique_until", "limit_key", "limit_concurrency",
               "limit_rate", "limit_window_s"]


def make_version_3_file(path: Path) -> None:
    """Today's schema with what migration_4 adds taken away again."""
    fresh = SqliteDriver(settings_for(_env(path)))
    fresh.migrate()
    fresh.close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript("""
        DROP INDEX queue_unique; DROP INDEX queue_limit_running;
        DROP TRIGGER queue_unique_from_payload; DROP TABLE queue_starts;
    """)
    for column in NEW_COLUMNS:
        conn.execute(f"ALTER TABLE queue DROP COLUMN {column}")
    conn.execute("INSERT INTO queue (queue, payload) VALUES ('default', '{\"n\": 1}')")
    conn.execute("PRAGMA user_version = 3")
    conn.close()


def _env(path: Path) -> dict[str, str]:
    return {"QUEUE_DRIVER": "database", "DATABASE_URL": f"sqlite:///{path}"}


def test_a_version_3_file_gets_the_columns_once_and_keeps_its_jobs(tmp_path: Path) -> None:
    path = tmp_path / "queue.sqlite3"
    make_version_3_file(path)
    driver = SqliteDriver(settings_for(_env(path)))
    try:
        now = time.time()
        first, again = (driver.push_many("default", [NewJob('{"n": 2}', now, "k", "done")])[0],
                        driver.push_many("default", [NewJob('{"n": 3}', now, "k", "done")])[0])
        assert again == first and isinstance(again, ExistingId)
        driver.migrate()  # every block once more: nothing added twice
        (ready,) = [s.ready for s in driver.stats()]
        assert ready == 2
    finally:
        driver.close()
    conn = sqlite3.connect(path)
    columns = [row[1] for row in conn.execute("PRAGMA table_info(queue)")]
    assert columns[-len(NEW_COLUMNS):] == NEW_COLUMNS
    assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    conn.close()
