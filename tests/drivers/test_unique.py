"""Unique keys: a push whose key a job holds in a blocking state creates nothing and
returns that job's id; the key is free the moment its holder leaves those states."""

from __future__ import annotations

import json
import sqlite3
import threading
import time

import psycopg
import pytest

from chappyd.drivers import open_driver
from chappyd.drivers.base import ExistingId, JobState, NewJob

from .helpers import OTHER_OWNER, OWNER, payload, reserve_one, stats_of


def unique_job(key: str = "k1", until: str = "done", n: int = 0, delay_s: float = 0.0,
               ) -> NewJob:
    text = payload(n=n, unique_key=key, unique_until=until)
    return NewJob(text, time.time() + delay_s, key, until)


def push_unique(driver, key: str = "k1", until: str = "done", n: int = 0,
                queue: str = "default", delay_s: float = 0.0) -> str:
    return driver.push_many(queue, [unique_job(key, until, n, delay_s)])[0]


def n_of(driver, job_id: str) -> int:
    return json.loads(driver.get(job_id).payload)["n"]


@pytest.mark.parametrize("until", ["started", "done"])
def test_a_second_push_of_a_waiting_key_returns_the_first_id(driver, until):
    first = push_unique(driver, until=until, n=1)
    second = push_unique(driver, until=until, n=2)
    assert second == first and isinstance(second, ExistingId)
    assert not isinstance(first, ExistingId)
    assert stats_of(driver) == (1, 0, 0, 0)
    assert n_of(driver, first) == 1


def test_a_delayed_job_holds_its_key(driver):
    first = push_unique(driver, delay_s=60)
    assert push_unique(driver) == first
    assert stats_of(driver) == (0, 1, 0, 0)


def test_push_many_inserts_a_key_repeated_in_the_batch_once(driver):
    ids = driver.push_many("default", [unique_job("a", n=0), unique_job("b", n=1),
                                       unique_job("a", n=2), NewJob(payload(n=3), time.time())])
    assert ids[2] == ids[0] and isinstance(ids[2], ExistingId)
    assert len({ids[0], ids[1], ids[3]}) == 3
    assert not any(isinstance(i, ExistingId) for i in (ids[0], ids[1], ids[3]))
    assert stats_of(driver) == (3, 0, 0, 0)


def test_push_many_returns_a_stored_holder_for_a_copy_in_the_batch(driver):
    held = push_unique(driver, "a")
    ids = driver.push_many("default", [unique_job("a"), unique_job("a"), unique_job("c")])
    assert ids[:2] == [held, held]
    assert stats_of(driver) == (2, 0, 0, 0)


def test_different_keys_do_not_block_each_other(driver):
    assert push_unique(driver, "a") != push_unique(driver, "b")


def test_started_key_is_free_once_its_job_is_reserved(driver):
    first = push_unique(driver, until="started")
    assert reserve_one(driver).id == first
    second = push_unique(driver, until="started", n=2)
    assert second != first and not isinstance(second, ExistingId)
    assert push_unique(driver, until="started", n=3) == second


def test_done_key_is_held_while_its_job_runs_and_freed_by_ack(driver):
    first = push_unique(driver)
    held = reserve_one(driver)
    assert push_unique(driver, n=2) == first
    assert driver.ack(held)
    second = push_unique(driver, n=3)
    assert second != first and n_of(driver, second) == 3


def test_final_failure_frees_the_key(driver):
    first = push_unique(driver)
    assert driver.fail(reserve_one(driver), "Boom: final")
    second = push_unique(driver, n=2)
    assert second != first
    assert driver.get(first).state == JobState.FAILED


def test_forget_and_clear_free_the_key(driver):
    first = push_unique(driver)
    driver.fail(reserve_one(driver), "Boom: final")
    assert driver.forget([first]) == 1
    waiting = push_unique(driver, n=2)
    assert driver.clear("default") == 1
    third = push_unique(driver, n=3)
    assert third not in (first, waiting) and driver.get(third).state == JobState.READY


def test_a_retried_done_job_keeps_its_key(driver):
    first = push_unique(driver)
    assert driver.retry(reserve_one(driver), time.time() + 60, "Boom: again")
    assert push_unique(driver, n=2) == first
    assert stats_of(driver) == (0, 1, 0, 0)


def test_a_retried_started_job_blocks_again_when_its_key_is_free(driver):
    first = push_unique(driver, until="started")
    assert driver.retry(reserve_one(driver), time.time() + 60, "Boom: again")
    assert push_unique(driver, until="started") == first


def test_a_started_job_retried_after_a_new_copy_goes_on_without_the_key(driver):
    first = push_unique(driver, until="started", n=1)
    running = reserve_one(driver)
    second = push_unique(driver, until="started", n=2)
    assert driver.retry(running, time.time() + 60, "Boom: again")
    # both wait: the retry is not lost, and the newer copy keeps the key
    assert stats_of(driver) == (1, 1, 0, 0)
    assert push_unique(driver, until="started", n=3) == second
    assert driver.get(first).state == JobState.DELAYED


def test_released_copies_of_one_key_leave_one_holder(driver):
    push_unique(driver, until="started", n=1)
    a = reserve_one(driver)
    push_unique(driver, until="started", n=2)
    b = reserve_one(driver)
    assert driver.release_owner(OWNER) == 2
    assert stats_of(driver) == (2, 0, 0, 0)
    holder = push_unique(driver, until="started", n=3)
    assert holder in (a.id, b.id) and isinstance(holder, ExistingId)


def test_release_by_token_keeps_the_key_only_when_free(driver):
    push_unique(driver, until="started", n=1)
    a = reserve_one(driver)
    second = push_unique(driver, until="started", n=2)
    assert driver.release([a]) == 1
    assert push_unique(driver, until="started", n=3) == second


def test_expired_leases_of_one_key_leave_one_holder(driver):
    push_unique(driver, until="started", n=1)
    a = driver.reserve(["default"], OWNER, 0.05, 1)[0]
    push_unique(driver, until="started", n=2)
    b = driver.reserve(["default"], OTHER_OWNER, 0.05, 1)[0]
    time.sleep(0.1)
    assert driver.expire_leases() == 2
    holder = push_unique(driver, until="started", n=3)
    assert holder in (a.id, b.id)
    assert stats_of(driver) == (2, 0, 0, 0)


def test_a_revived_failure_whose_key_was_taken_goes_on_without_it(driver):
    first = push_unique(driver, n=1)
    driver.fail(reserve_one(driver), "Boom: final")
    second = push_unique(driver, n=2)
    assert driver.retry_failed([first]) == 1
    assert push_unique(driver, n=3) == second
    assert stats_of(driver) == (2, 0, 0, 0)


def test_a_revived_failure_whose_key_is_free_holds_it_again(driver):
    first = push_unique(driver, n=1)
    driver.fail(reserve_one(driver), "Boom: final")
    assert driver.retry_failed(None) == 1
    assert push_unique(driver, n=2) == first


def test_concurrent_pushes_of_one_key_create_one_job(settings, driver):
    barrier = threading.Barrier(12)
    ids: list[str] = []

    def pusher(n: int) -> None:
        own = open_driver(settings)
        try:
            own.push_many("default", [NewJob(payload(), time.time())])  # connect first
            barrier.wait()
            ids.append(own.push_many("default", [unique_job("race", n=n)])[0])
        finally:
            own.close()

    threads = [threading.Thread(target=pusher, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(ids) == 12 and len(set(ids)) == 1
    assert sum(not isinstance(i, ExistingId) for i in ids) == 1
    assert stats_of(driver) == (13, 0, 0, 0)


def test_a_push_on_the_callers_connection_honours_unique_keys(backend, settings, driver):
    if backend == "redis":
        pytest.skip("Redis refuses conn=")
    first = push_unique(driver, n=1)
    conn = (sqlite3.connect(settings.sqlite_path()) if backend == "sqlite"
            else psycopg.connect(settings.database_url))
    try:
        again, fresh = driver.push_many(
            "default", [unique_job("k1", n=2), unique_job("k2", n=3)], conn=conn)
        conn.commit()
    finally:
        conn.close()
    assert again == first and isinstance(again, ExistingId)
    assert not isinstance(fresh, ExistingId) and n_of(driver, fresh) == 3
    assert stats_of(driver) == (2, 0, 0, 0)
    assert n_of(driver, first) == 1
