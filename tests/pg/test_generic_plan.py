"""The claim under the plan PostgreSQL caches for a prepared statement.

After five executions PostgreSQL may replace the custom plans of a prepared statement
with one generic plan, chosen from the table statistics of that moment and kept for the
life of the connection. The claim once got a hash join over a scan of the whole table
there (every dead row included): 4 ms of server CPU per job until the next ANALYZE.
"""

from __future__ import annotations

import json
import re
import time
from urllib.parse import quote

import psycopg

from chappyd.drivers.base import NewJob
from chappyd.drivers.postgres.driver import Q

from .helpers import pg_driver

GENERIC = "-c plan_cache_mode=force_generic_plan"


def test_the_claim_under_a_generic_plan_takes_every_job_once_in_order(postgres_env):
    url = postgres_env["DATABASE_URL"]
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("ANALYZE queue")  # statistics of an empty table, the worst case
    separator = "&" if "?" in url else "?"
    driver = pg_driver(postgres_env, DATABASE_URL=f"{url}{separator}options={quote(GENERIC)}")
    now = time.time()
    low = driver.push_many("low", [NewJob(json.dumps({"job": "x", "n": i}), now)
                                   for i in range(120)])
    high = driver.push_many("high", [NewJob(json.dumps({"job": "x", "n": i}), now)
                                     for i in range(40)])
    taken = []
    while batch := driver.reserve(["high", "low", "high"], "h:1:2", 30, 16):
        taken += [r.id for r in batch]
    assert taken == high + low
    driver.close()


def test_a_worker_connection_plans_the_claim_on_indexes_even_from_an_empty_table(
        postgres_env):
    # the worst case: the generic plan is made while the table is empty, as an idle
    # worker's claims on each wake-up make it, and kept when the backlog arrives
    with psycopg.connect(postgres_env["DATABASE_URL"], autocommit=True) as admin:
        admin.execute("VACUUM ANALYZE queue")
    driver = pg_driver(postgres_env)
    assert driver.reserve(["default"], "h:1:2", 30, 16) == []  # now a worker's connection
    with driver._session.use() as conn:
        conn.execute("SET plan_cache_mode = force_generic_plan")
        conn.execute(f"PREPARE claim(text, text, text, bigint, bool) AS {Q['reserve']}")
        plan = "\n".join(row[0] for row in conn.execute(
            """EXPLAIN EXECUTE claim('["default"]', 'h:1:2', '30', 16, true)"""))
        conn.execute("DEALLOCATE claim")
    driver.close()
    assert "Index Scan using queue_waiting_at on queue" in plan
    assert "Index Scan using queue_pkey on queue" in plan
    assert not re.search(r"(Seq|Bitmap Heap) Scan on queue\b(?!_)", plan), plan


def test_lease_expiry_looks_expired_jobs_up_by_id_even_from_an_empty_tables_statistics(
        postgres_env):
    # the master's connection, every 4 s: from an empty table's statistics the old
    # `id IN (subquery)` probed the subquery once per row of the backlog
    with psycopg.connect(postgres_env["DATABASE_URL"], autocommit=True) as admin:
        admin.execute("VACUUM ANALYZE queue")
    driver = pg_driver(postgres_env)
    now = time.time()
    driver.push_many("default", [NewJob(json.dumps({"job": "x", "n": i}), now)
                                 for i in range(2000)])
    taken = driver.reserve(["default"], "h:1:2", 0.01, 3)
    time.sleep(0.05)
    with driver._session.use() as conn:
        plan = "\n".join(row[0] for row in conn.execute(
            "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + Q["expire_leases"]))
    driver.close()
    lookups = re.findall(r"Index Scan using queue_pkey on queue .*\n(?:.*\n)*?.*"
                         r"Index Cond: \(id = ANY", plan)
    assert len(taken) == 3 and lookups, plan
    assert re.search(r"Update on queue .*\(actual rows=0 loops=1\)", plan), plan
    # the unique-key check's scan runs only for a job with a key (these have none)
    scans = re.findall(r"Seq Scan on queue\b(?!_).*", plan)
    assert "Semi Join" not in plan and all("never executed" in s for s in scans), plan
    assert "actual rows=2000" not in plan, plan  # nothing read the whole backlog
