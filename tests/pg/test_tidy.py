"""An idle worker vacuums the queue table when autovacuum lags behind it."""

from __future__ import annotations

import time

import psycopg

from chappyd.drivers.base import NewJob
from chappyd.drivers.postgres.driver import TIDY_DEAD_ROWS

from .helpers import pg_driver, wait_until

STATS = "SELECT n_dead_tup, last_vacuum FROM pg_stat_user_tables WHERE relname = 'queue'"


def test_an_idle_worker_vacuums_a_table_full_of_dead_rows(postgres_env):
    url = postgres_env["DATABASE_URL"]
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("ALTER TABLE queue SET (autovacuum_enabled = false)")
        driver = pg_driver(postgres_env)
        driver.wait(["default"], 0.01)  # nothing to tidy yet: no dead rows
        for _ in range(TIDY_DEAD_ROWS // 1000 + 1):
            driver.push_many("default", [NewJob('{"job": "x"}', time.time())] * 1000)
        while batch := driver.reserve(["default"], "h:1:2", 30, 500):
            for reservation in batch:
                assert driver.ack(reservation)
        wait_until(lambda: admin.execute(STATS).fetchone()[0] >= TIDY_DEAD_ROWS, 15,
                   "the statistics to count the dead rows")
        assert admin.execute(STATS).fetchone()[1] is None
        driver._tidy_at = 0.0  # as if TIDY_INTERVAL_S had passed since the first wait
        driver.wait(["default"], 0.01)
        wait_until(lambda: admin.execute(STATS).fetchone()[1] is not None, 15,
                   "the vacuum to be recorded")
        driver.close()
