"""jobs() and count_jobs(): one page of the jobs in a state, newest first, filtered by
queue and job name; what the dashboard's pages read."""

from __future__ import annotations

import time

import pytest

from chappyd.drivers.base import JobState, NewJob

from .helpers import payload, push, reserve_one


def _failed(driver, queue="default", job="tests.Noop"):
    job_id = driver.push_many(queue, [NewJob(payload(job), time.time())])[0]
    driver.fail(reserve_one(driver, (queue,)), f"E: {job_id}")
    time.sleep(0.002)  # distinct failed_at on every backend's clock
    return job_id


def _ids(records):
    return [r.id for r in records]


def test_failed_jobs_page_newest_first_with_limit_and_offset(driver):
    ids = [_failed(driver) for _ in range(7)]
    newest = list(reversed(ids))
    assert _ids(driver.jobs(JobState.FAILED, limit=3)) == newest[:3]
    assert _ids(driver.jobs(JobState.FAILED, limit=3, offset=3)) == newest[3:6]
    assert _ids(driver.jobs(JobState.FAILED, limit=3, offset=6)) == newest[6:]
    assert driver.jobs(JobState.FAILED, limit=3, offset=7) == []
    assert driver.count_jobs(JobState.FAILED) == 7
    record = driver.jobs(JobState.FAILED, limit=1)[0]
    assert (record.state, record.attempts, record.exception) == (
        JobState.FAILED, 1, f"E: {ids[-1]}")


def test_failed_jobs_filter_by_queue_and_job_across_queues(driver):
    a = _failed(driver, "emails", "app.Send")
    b = _failed(driver, "reports", "app.Send")
    c = _failed(driver, "emails", "app.Other")
    d = _failed(driver, "emails", "app.Send")
    assert _ids(driver.jobs(JobState.FAILED)) == [d, c, b, a]
    assert _ids(driver.jobs(JobState.FAILED, queue="emails")) == [d, c, a]
    assert _ids(driver.jobs(JobState.FAILED, job="app.Send")) == [d, b, a]
    assert _ids(driver.jobs(JobState.FAILED, job="app.Send", limit=1, offset=1)) == [b]
    assert _ids(driver.jobs(JobState.FAILED, queue="emails", job="app.Send")) == [d, a]
    assert driver.count_jobs(JobState.FAILED, queue="emails") == 3
    assert driver.count_jobs(JobState.FAILED, job="app.Send") == 3
    assert driver.count_jobs(JobState.FAILED, queue="emails", job="app.Send") == 2
    assert driver.count_jobs(JobState.FAILED, job="app.Missing") == 0
    assert driver.count_jobs(JobState.FAILED, queue="nowhere") == 0


def test_a_payload_that_is_not_json_is_listed_and_matches_no_job_filter(driver):
    driver.push_many("default", [NewJob("not json {", time.time())])
    driver.fail(reserve_one(driver), "InvalidPayload: x")
    good = _failed(driver, job="app.Send")
    assert len(driver.jobs(JobState.FAILED)) == 2
    assert _ids(driver.jobs(JobState.FAILED, job="app.Send")) == [good]


def test_each_state_lists_only_its_own_jobs(driver):
    ready = [push(driver, delay_s=-3), push(driver, delay_s=-2)]
    delayed = [push(driver, delay_s=60), push(driver, delay_s=120)]
    reserved = push(driver, "busy")
    reserve_one(driver, ("busy",))
    failed = _failed(driver, "broken")
    assert _ids(driver.jobs(JobState.READY)) == [ready[1], ready[0]]
    assert _ids(driver.jobs(JobState.DELAYED)) == [delayed[1], delayed[0]]
    assert _ids(driver.jobs(JobState.RESERVED)) == [reserved]
    assert _ids(driver.jobs(JobState.FAILED)) == [failed]
    counts = {state: driver.count_jobs(state) for state in JobState}
    assert counts == {JobState.READY: 2, JobState.DELAYED: 2, JobState.RESERVED: 1,
                      JobState.FAILED: 1}
    assert {r.state for r in driver.jobs(JobState.DELAYED)} == {JobState.DELAYED}
    assert driver.jobs(JobState.READY, queue="busy") == []


@pytest.mark.parametrize("state", list(JobState))
def test_an_empty_store_lists_nothing(driver, state):
    assert driver.jobs(state) == []
    assert driver.count_jobs(state) == 0


def test_the_job_filter_matches_a_php_style_name_exactly(driver):
    php = _failed(driver, job="App\\Jobs\\SendWelcomeEmail")
    _failed(driver, job="App\\Jobs\\SendWelcomeEmailLater")
    _failed(driver, job="App.Jobs.SendWelcomeEmail")
    assert _ids(driver.jobs(JobState.FAILED, job="App\\Jobs\\SendWelcomeEmail")) == [php]
    assert driver.count_jobs(JobState.FAILED, job="App\\Jobs\\SendWelcomeEmail") == 1


def test_ready_and_delayed_jobs_filter_by_job_too(driver):
    a = driver.push_many("default", [NewJob(payload("app.A"), time.time() - 2)])[0]
    driver.push_many("default", [NewJob(payload("app.B"), time.time() - 1)])
    c = driver.push_many("other", [NewJob(payload("app.A"), time.time())])[0]
    d = driver.push_many("default", [NewJob(payload("app.A"), time.time() + 60)])[0]
    assert _ids(driver.jobs(JobState.READY, job="app.A")) == [c, a]
    assert driver.count_jobs(JobState.READY, job="app.A") == 2
    assert _ids(driver.jobs(JobState.DELAYED, job="app.A")) == [d]
    assert _ids(driver.jobs(JobState.READY, queue="default", job="app.B", offset=1)) == []


def test_a_delayed_job_that_fell_due_is_listed_as_ready(driver):
    due = push(driver, delay_s=0.05)
    later = push(driver, delay_s=60)
    time.sleep(0.1)
    assert _ids(driver.jobs(JobState.READY)) == [due]
    assert _ids(driver.jobs(JobState.DELAYED)) == [later]
    assert (driver.count_jobs(JobState.READY), driver.count_jobs(JobState.DELAYED)) == (1, 1)
    assert _ids(driver.jobs(JobState.DELAYED, offset=1)) == []


def test_a_page_of_zero_jobs_is_empty(driver):
    _failed(driver)
    push(driver, "waiting")
    assert driver.jobs(JobState.FAILED, limit=0) == []
    assert driver.jobs(JobState.READY, queue="waiting", limit=0) == []
