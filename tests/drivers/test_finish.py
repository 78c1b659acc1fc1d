"""ack / retry / fail / release, each fenced by the reservation's token."""

from __future__ import annotations

import time
from dataclasses import replace

from chappyd.drivers.base import JobState

from .helpers import OTHER_OWNER, push, reserve_one, stats_of


def test_ack_deletes_the_job(driver):
    job_id = push(driver)
    assert driver.ack(reserve_one(driver)) is True
    assert driver.get(job_id) is None
    assert stats_of(driver) == (0, 0, 0, 0)


def test_ack_with_a_stale_token_changes_nothing(driver):
    job_id = push(driver)
    r = reserve_one(driver)
    assert driver.ack(replace(r, token="not-the-token")) is False
    assert driver.get(job_id).state == JobState.RESERVED


def test_retry_puts_the_job_back_delayed_with_the_error(driver):
    job_id = push(driver)
    r = reserve_one(driver)
    assert driver.retry(r, time.time() + 0.5, "RuntimeError: boom\ntrace") is True
    record = driver.get(job_id)
    assert record.state == JobState.DELAYED
    assert record.attempts == 1
    assert record.exception == "RuntimeError: boom\ntrace"
    assert record.reserved_at is None
    assert driver.reserve(["default"], OTHER_OWNER, 30, 1) == []
    time.sleep(0.6)
    again = reserve_one(driver, owner=OTHER_OWNER)
    assert (again.id, again.attempts) == (job_id, 2)
    assert again.token != r.token


def test_retry_at_now_is_ready_at_once(driver):
    job_id = push(driver)
    driver.retry(reserve_one(driver), time.time(), "E: x")
    assert reserve_one(driver).id == job_id


def test_fail_keeps_the_job_with_failed_at_and_exception(driver):
    job_id = push(driver)
    before = time.time()
    assert driver.fail(reserve_one(driver), "ValueError: bad\nTraceback...") is True
    record = driver.get(job_id)
    assert record.state == JobState.FAILED
    assert record.attempts == 1
    assert record.exception == "ValueError: bad\nTraceback..."
    assert before - 1 <= record.failed_at <= time.time() + 1
    assert stats_of(driver) == (0, 0, 0, 1)
    assert driver.reserve(["default"], OTHER_OWNER, 30, 1) == []


def test_stale_retry_and_fail_change_nothing(driver):
    job_id = push(driver)
    r = reserve_one(driver)
    stale = replace(r, token="stale")
    assert driver.retry(stale, time.time(), "x") is False
    assert driver.fail(stale, "x") is False
    record = driver.get(job_id)
    assert record.state == JobState.RESERVED and record.exception is None


def test_release_refunds_the_attempt_and_makes_it_ready(driver):
    ids = [push(driver) for _ in range(2)]
    taken = driver.reserve(["default"], "h:1:2", 30, 2)
    assert driver.release(taken) == 2
    for job_id in ids:
        record = driver.get(job_id)
        assert (record.state, record.attempts) == (JobState.READY, 0)
    assert [r.attempts for r in driver.reserve(["default"], "h:1:2", 30, 2)] == [1, 1]


def test_release_skips_stale_tokens(driver):
    push(driver)
    r = reserve_one(driver)
    assert driver.release([replace(r, token="stale")]) == 0
    assert driver.get(r.id).state == JobState.RESERVED
