"""Idle workers sleep on LISTEN and wake for exactly what concerns them: a plain INSERT
from psql (a PHP producer), a delayed job falling due, a release, a resume."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

from chappyd.drivers.base import JobState

from .helpers import pg_driver

PAYLOAD = json.dumps({"job": "App\\Jobs\\SendWelcomeEmail", "data": {"user_id": 7}})


def _timed_wait(driver, trigger: Callable[[], object], after_s: float = 0.3,
                timeout_s: float = 10.0, queues=("default",)) -> float:
    """Seconds one wait() took while `trigger` ran in another thread after `after_s`."""
    driver.wait(list(queues), 0.01)  # LISTEN is set up: the trigger cannot come too early
    timer = threading.Timer(after_s, trigger)
    started = time.monotonic()
    timer.start()
    try:
        driver.wait(list(queues), timeout_s)
    finally:
        timer.join()
    return time.monotonic() - started


def test_a_plain_insert_by_psql_wakes_a_waiting_worker(postgres_server, postgres_database,
                                                       postgres_env):
    driver = pg_driver(postgres_env)
    sql = f"INSERT INTO queue (queue, payload) VALUES ('default', '{PAYLOAD}')"
    elapsed = _timed_wait(driver, lambda: postgres_server.psql(postgres_database, sql))
    assert 0.3 <= elapsed < 2.0
    job = driver.reserve(["default"], "h:1:2", 30, 5)
    assert [(r.payload, r.attempts) for r in job] == [(PAYLOAD, 1)]
    record = driver.get(job[0].id)
    assert abs(record.created_at - time.time()) < 5 and record.available_at <= time.time()
    driver.close()


def test_an_insert_for_another_queue_does_not_wake(postgres_server, postgres_database,
                                                   postgres_env):
    driver = pg_driver(postgres_env)
    sql = f"INSERT INTO queue (queue, payload) VALUES ('other', '{PAYLOAD}')"
    elapsed = _timed_wait(driver, lambda: postgres_server.psql(postgres_database, sql),
                          timeout_s=1.0)
    assert elapsed >= 0.95
    driver.close()


def test_a_delayed_insert_by_a_php_producer_wakes_the_worker_when_due(
        postgres_server, postgres_database, postgres_env):
    driver = pg_driver(postgres_env)
    due = int(time.time()) + 2  # PHP writes whole unix seconds
    sql = (f"INSERT INTO queue (queue, payload, available_at) "
           f"VALUES ('default', '{PAYLOAD}', {due})")
    _timed_wait(driver, lambda: postgres_server.psql(postgres_database, sql), timeout_s=10)
    woke = time.time()
    assert due <= woke < due + 0.5
    assert len(driver.reserve(["default"], "h:1:2", 30, 1)) == 1
    driver.close()


def test_an_idle_wait_does_not_spin(postgres_env):
    driver = pg_driver(postgres_env)
    driver.wait(["default"], 0.01)
    cpu = time.thread_time()
    started = time.monotonic()
    driver.wait(["default"], 2.5)
    assert time.monotonic() - started >= 2.45
    assert time.thread_time() - cpu < 0.05
    driver.close()


def test_a_ready_job_in_a_paused_queue_does_not_wake_but_its_resume_does(postgres_env):
    driver, other = pg_driver(postgres_env), pg_driver(postgres_env)
    other.push_many("default", [_new_job()])
    other.set_paused("default", True)
    cpu = time.thread_time()
    started = time.monotonic()
    driver.wait(["default"], 1.5)
    assert time.monotonic() - started >= 1.45 and time.thread_time() - cpu < 0.05
    elapsed = _timed_wait(driver, lambda: other.set_paused("default", False))
    assert 0.3 <= elapsed < 2.0
    other.close()
    driver.close()


def test_a_job_released_by_a_master_wakes_a_waiting_worker(postgres_env):
    driver, master = pg_driver(postgres_env), pg_driver(postgres_env)
    job_id = master.push_many("default", [_new_job()])[0]
    master.reserve(["default"], "h:1:9", 30, 1)
    elapsed = _timed_wait(driver, lambda: master.release_owner("h:1:9"))
    assert 0.3 <= elapsed < 2.0
    assert driver.get(job_id).state == JobState.READY
    master.close()
    driver.close()


def test_a_retry_due_soon_wakes_a_waiting_worker_at_its_time(postgres_env):
    driver, other = pg_driver(postgres_env), pg_driver(postgres_env)
    other.push_many("default", [_new_job()])
    held = other.reserve(["default"], "h:1:9", 30, 1)[0]
    due = time.time() + 1.0
    _timed_wait(driver, lambda: other.retry(held, due, "E: x"), after_s=0.2)
    assert due <= time.time() < due + 0.5
    other.close()
    driver.close()


def _new_job():
    from chappyd.drivers.base import NewJob

    return NewJob(PAYLOAD, time.time())
