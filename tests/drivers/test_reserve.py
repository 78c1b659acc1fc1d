"""Reserving: FIFO, priority order, attempts charged, each job to one holder."""

from __future__ import annotations

import threading
import time

from chappyd.drivers.base import JobState, NewJob

from .helpers import OTHER_OWNER, OWNER, payload, push, reserve_one, stats_of


def test_reserve_charges_the_attempt_and_marks_reserved(driver):
    job_id = push(driver)
    before = time.time()
    r = reserve_one(driver)
    assert (r.id, r.queue, r.attempts) == (job_id, "default", 1)
    assert r.token
    assert before - 1 <= r.reserved_at <= time.time() + 1
    record = driver.get(job_id)
    assert record.state == JobState.RESERVED and record.attempts == 1
    assert stats_of(driver) == (0, 0, 1, 0)


def test_reserve_is_fifo_within_a_queue(driver):
    ids = [push(driver, n=i) for i in range(3)]
    assert [reserve_one(driver).id for _ in ids] == ids


def test_queues_are_drained_in_strict_priority_order(driver):
    low = push(driver, "low")
    high = [push(driver, "high") for _ in range(2)]
    order = [reserve_one(driver, ("high", "low")).id for _ in range(3)]
    assert order == [*high, low]


def test_reserve_limit_takes_a_batch_across_queues_in_order(driver):
    a = [push(driver, "a") for _ in range(2)]
    b = [push(driver, "b") for _ in range(3)]
    taken = driver.reserve(["a", "b"], OWNER, 30, 4)
    assert [r.id for r in taken] == [*a, *b[:2]]
    assert len({r.token for r in taken}) == 4


def test_a_reserved_job_is_not_reserved_again(driver):
    push(driver)
    reserve_one(driver, owner=OWNER)
    assert driver.reserve(["default"], OTHER_OWNER, 30, 5) == []


def test_other_queues_are_not_touched(driver):
    push(driver, "other")
    assert driver.reserve(["default"], OWNER, 30, 1) == []
    assert stats_of(driver, "other") == (1, 0, 0, 0)


def test_empty_queue_reserves_nothing(driver):
    assert driver.reserve(["default", "x"], OWNER, 30, 3) == []


def test_paused_queue_is_skipped_until_resumed(driver):
    paused_job = push(driver, "p")
    other = push(driver, "q")
    driver.set_paused("p", True)
    assert driver.paused_queues() == {"p"}
    assert [r.id for r in driver.reserve(["p", "q"], OWNER, 30, 5)] == [other]
    driver.set_paused("p", False)
    assert driver.paused_queues() == set()
    assert reserve_one(driver, ("p",)).id == paused_job


def test_wait_returns_early_when_a_job_is_pushed(driver, other_driver):
    other_driver.migrate()
    timer = threading.Timer(0.3, lambda: other_driver.push_many(
        "default", [NewJob(payload(), time.time())]))
    started = time.monotonic()
    timer.start()
    driver.wait(["default"], 5.0)
    elapsed = time.monotonic() - started
    timer.join()
    assert 0.25 <= elapsed < 2.0


def test_wait_returns_when_the_next_delayed_job_falls_due(driver):
    push(driver, delay_s=0.5)
    started = time.monotonic()
    driver.wait(["default"], 5.0)
    assert time.monotonic() - started < 2.0
    assert reserve_one(driver).attempts == 1


def test_wait_times_out_without_jobs(driver):
    started = time.monotonic()
    driver.wait(["default"], 0.3)
    assert 0.25 <= time.monotonic() - started < 1.5

