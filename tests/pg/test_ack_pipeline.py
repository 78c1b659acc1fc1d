"""ack_and_reserve on PostgreSQL: the acks and the claim in one transaction and one
round trip (libpq pipeline mode), counted from libpq's own trace of the protocol."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
import pytest
from psycopg import pq

from chappyd.drivers.base import JobState, NewJob
from chappyd.drivers.postgres import PostgresDriver, pipeline
from chappyd.errors import BackendUnavailable
from chappyd.limits import JobLimit

from .helpers import pg_driver

OWNER = "h:1:2"


def jobs(n: int, limit: JobLimit | None = None) -> list[NewJob]:
    return [NewJob(json.dumps({"job": "x", "n": i}), time.time(), limit=limit)
            for i in range(n)]


@contextmanager
def traced(driver: PostgresDriver) -> Iterator[list[str]]:
    """The protocol messages the driver's connection sends and receives meanwhile, as
    'F <type>' and 'B <type>' (libpq's trace)."""
    messages: list[str] = []
    with tempfile.TemporaryFile("w+") as out, driver._session.use() as conn:
        conn.pgconn.trace(out.fileno())
        conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        try:
            yield messages
        finally:
            conn.pgconn.untrace()
            out.seek(0)
            messages += [f"{line.split(chr(9))[0]} {line.split(chr(9))[2]}"
                         for line in out.read().splitlines() if line[:2] in ("F\t", "B\t")]


def round_trips(messages: list[str]) -> int:
    """Each Sync (extended protocol) or Query (simple protocol) waits for its reply."""
    return sum(m in ("F Sync", "F Query") for m in messages)


def count_of(call: Callable[[], object], driver: PostgresDriver) -> int:
    with traced(driver) as messages:
        call()
    return round_trips(messages)


def test_ack_and_reserve_is_one_round_trip_and_reserve_alone_is_unchanged(postgres_env):
    driver = pg_driver(postgres_env)
    driver.push_many("default", jobs(8))
    first = driver.reserve(["default"], OWNER, 30, 2)  # connected, settings made
    with traced(driver) as messages:
        acked, second = driver.ack_and_reserve(first, ["default"], OWNER, 30, 2)
    assert (acked, len(second)) == (2, 2)
    assert round_trips(messages) == 1 and messages.count("B ReadyForQuery") == 1
    assert count_of(lambda: driver.ack_and_reserve([], ["default"], OWNER, 30, 2), driver) == 1
    assert count_of(lambda: driver.reserve(["default"], OWNER, 30, 2), driver) == 1
    assert count_of(lambda: driver.ack_many(second), driver) == 1
    driver.close()


def test_with_limited_jobs_the_lock_goes_in_the_same_round_trip(postgres_env):
    driver = pg_driver(postgres_env)
    driver.push_many("default", jobs(4, JobLimit("api", 1, None, None)))
    (first,) = driver.reserve(["default"], OWNER, 30, 4)
    with traced(driver) as messages:
        acked, taken = driver.ack_and_reserve([first], ["default"], OWNER, 30, 4)
    assert (acked, [json.loads(r.payload)["n"] for r in taken]) == (1, [1])
    assert round_trips(messages) == 1
    driver.close()


def test_a_failing_claim_rolls_its_acks_back_and_the_connection_goes_on(postgres_env):
    with psycopg.connect(postgres_env["DATABASE_URL"], autocommit=True) as admin:
        admin.execute("""
            CREATE FUNCTION refuse_owner() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'refused'; END $$;
            CREATE TRIGGER refuse_owner BEFORE UPDATE ON queue FOR EACH ROW
                WHEN (NEW.owner = 'refused:1:1') EXECUTE FUNCTION refuse_owner()""")
    driver = pg_driver(postgres_env)
    driver.push_many("default", jobs(3))
    done = driver.reserve(["default"], OWNER, 30, 1)
    with pytest.raises(BackendUnavailable, match="refused"):
        driver.ack_and_reserve(done, ["default"], "refused:1:1", 30, 1)
    assert driver.get(done[0].id).state == JobState.RESERVED  # the ack was rolled back
    # the statements prepared in the failed pipeline are still there
    acked, taken = driver.ack_and_reserve(done, ["default"], OWNER, 30, 1)
    assert (acked, len(taken)) == (1, 1)
    assert driver.get(done[0].id) is None
    driver.close()


def test_without_pipeline_mode_the_same_transaction_runs_statement_by_statement(
        postgres_env, monkeypatch):
    monkeypatch.setattr(pipeline, "PIPELINE_LIBPQ", 10**9)  # a libpq older than 14
    driver = pg_driver(postgres_env)
    driver.push_many("default", jobs(2, JobLimit("api", 1, None, None)))
    first = driver.reserve(["default"], OWNER, 30, 2)
    assert len(first) == 1
    with traced(driver) as messages:
        acked, taken = driver.ack_and_reserve(first, ["default"], OWNER, 30, 2)
    assert (acked, [json.loads(r.payload)["n"] for r in taken]) == (1, [1])
    # BEGIN, the delete (prepared first: its first use here), the lock, the claim, COMMIT
    assert round_trips(messages) == 6
    driver.close()
