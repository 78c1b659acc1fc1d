"""The dashboard's changes, each checked in the store: retry, forget, retry all,
flush, pause, resume, clear; and where a browser is sent afterwards."""

from __future__ import annotations

import json
import time

from chappyd.drivers.base import JobState, NewJob
from tests.web.conftest import (
    ADMIN_TOKEN,
    NIGHTLY,
    NIGHTLY_QUEUE,
    READONLY_TOKEN,
    failed_job,
)


def _post(web, path, **form):
    reply = web.request("POST", path, token=ADMIN_TOKEN, accept_json=True, form=form)
    assert reply.status == 200, (path, reply.text)
    return reply.json()


def test_retry_moves_a_failed_job_back_to_ready_with_attempts_reset(web, driver):
    job_id = failed_job(driver)
    other = failed_job(driver)
    assert _post(web, f"/jobs/{job_id}/retry") == {"done": "retried", "count": 1}
    record = driver.get(job_id)
    assert (record.state, record.attempts, record.failed_at) == (JobState.READY, 0, None)
    assert driver.get(other).state == JobState.FAILED
    (reserved,) = driver.reserve(["default"], "testhost:1:3", 30.0, 1)
    assert reserved.id == job_id


def test_a_browser_retry_is_sent_back_to_the_page_it_came_from(web, driver):
    job_id = failed_job(driver)
    cookie = web.login(ADMIN_TOKEN)
    reply = web.request("POST", f"/jobs/{job_id}/retry", cookie=cookie, origin=web.origin,
                        form={"next": "/failed?queue=default&page=1"})
    assert (reply.status, reply.headers["location"]) == (303, "/failed?queue=default&page=1")
    assert driver.get(job_id).state == JobState.READY
    job_id = failed_job(driver, "second")  # the first is ready again: another queue
    reply = web.request("POST", f"/jobs/{job_id}/forget", cookie=cookie, origin=web.origin,
                        headers={"Referer": web.url + "failed?page=2"})
    assert (reply.status, reply.headers["location"]) == (303, "/failed?page=2")
    job_id = failed_job(driver, "third")
    elsewhere = web.request("POST", f"/jobs/{job_id}/retry", cookie=cookie, origin=web.origin,
                            form={"next": "//evil.example/"},
                            headers={"Referer": "http://evil.example/x"})
    assert (elsewhere.status, elsewhere.headers["location"]) == (303, f"/jobs/{job_id}")


def test_forget_deletes_only_that_failed_job(web, driver):
    job_id, kept = failed_job(driver), failed_job(driver)
    assert _post(web, f"/jobs/{job_id}/forget") == {"done": "forgot", "count": 1}
    assert driver.get(job_id) is None
    assert driver.get(kept).state == JobState.FAILED


def test_retry_or_forget_of_a_job_that_is_not_failed_changes_nothing(web, driver):
    (ready,) = driver.push_many("default", [NewJob('{"job": "a"}', time.time())])
    for verb in ("retry", "forget"):
        reply = web.request("POST", f"/jobs/{ready}/{verb}", token=ADMIN_TOKEN,
                            accept_json=True)
        assert reply.status == 409
        assert reply.json() == {"error": f"job {ready} is ready, not failed: only failed "
                                         "jobs can be retried or forgotten"}
    assert driver.get(ready).state == JobState.READY
    missing = web.request("POST", "/jobs/424242/retry", token=ADMIN_TOKEN, accept_json=True)
    assert missing.status == 404


def test_retry_all_and_flush_act_on_the_queue_given_or_on_all(web, driver):
    emails = [failed_job(driver, "emails") for _ in range(3)]
    reports = [failed_job(driver, "reports") for _ in range(2)]
    assert _post(web, "/failed/retry-all", queue="emails") == {"done": "retried", "count": 3}
    assert {driver.get(i).state for i in emails} == {JobState.READY}
    assert {driver.get(i).state for i in reports} == {JobState.FAILED}
    more = failed_job(driver, "more")
    assert _post(web, "/failed/flush", queue="reports") == {"done": "flushed", "count": 2}
    assert [driver.get(i) for i in reports] == [None, None]
    assert _post(web, "/failed/retry-all") == {"done": "retried", "count": 1}
    assert driver.get(more).state == JobState.READY
    failed_job(driver, "x")
    assert _post(web, "/failed/flush") == {"done": "flushed", "count": 1}
    assert driver.count_jobs(JobState.FAILED) == 0


def test_pause_resume_and_clear_a_queue(web, driver):
    failed = failed_job(driver, "emails")  # first: failed_job reserves the oldest ready job
    ready = driver.push_many("emails", [NewJob('{"job": "a"}', time.time()),
                                        NewJob('{"job": "a"}', time.time() + 60)])
    assert _post(web, "/queues/emails/pause") == {"done": "paused", "count": 0}
    assert driver.paused_queues() == {"emails"}
    assert driver.reserve(["emails"], "testhost:1:4", 30.0, 1) == []
    assert _post(web, "/queues/emails/resume") == {"done": "resumed", "count": 0}
    assert driver.paused_queues() == set()
    assert _post(web, "/queues/emails/clear") == {"done": "cleared", "count": 2}
    assert [driver.get(i) for i in ready] == [None, None]
    assert driver.get(failed).state == JobState.FAILED


def test_actions_are_post_only(web, driver):
    job_id = failed_job(driver)
    for path in (f"/jobs/{job_id}/retry", "/failed/flush", "/failed/retry-all"):
        reply = web.request("GET", path, token=ADMIN_TOKEN, accept_json=True)
        assert reply.status == 405, path
    assert driver.get(job_id).state == JobState.FAILED


def _nightly_jobs(driver):
    records = driver.jobs(JobState.READY, NIGHTLY_QUEUE, limit=10, offset=0)
    return [(r.id, json.loads(r.payload)["job"]) for r in records]


def test_run_now_pushes_one_run_on_the_class_queue_and_leaves_last_run(scheduled_web, driver):
    tick = int(time.time()) - 3600
    payload = json.dumps({"job": NIGHTLY, "data": {}, "max_attempts": 3})
    ticked = driver.enqueue_tick(NIGHTLY_QUEUE, NIGHTLY, tick, NewJob(payload, tick)).job_id
    before = time.time()
    assert _post(scheduled_web, f"/schedules/{NIGHTLY}/run") == {"done": "pushed",
                                                                 "count": 1}
    jobs = _nightly_jobs(driver)
    assert len(jobs) == 2 and jobs[1] == (ticked, NIGHTLY)
    run_id, job_name = jobs[0]
    assert job_name == NIGHTLY
    run = driver.get(run_id)
    assert before - 1 <= json.loads(run.payload)["scheduled_for"] <= time.time()
    assert driver.last_ticks({NIGHTLY: NIGHTLY_QUEUE}) == {NIGHTLY: tick}
    assert [s.queue for s in driver.stats() if s.ready] == [NIGHTLY_QUEUE]
    cookie = scheduled_web.login(ADMIN_TOKEN)
    reply = scheduled_web.request("POST", f"/schedules/{NIGHTLY}/run", cookie=cookie,
                                  origin=scheduled_web.origin, form={"next": "/schedules"})
    assert (reply.status, reply.headers["location"]) == (303, "/schedules")
    assert len(_nightly_jobs(driver)) == 3


def test_run_now_is_refused_to_the_readonly_token_and_for_unknown_jobs(scheduled_web,
                                                                       driver):
    reply = scheduled_web.request("POST", f"/schedules/{NIGHTLY}/run", token=READONLY_TOKEN,
                                  accept_json=True)
    assert (reply.status, reply.json()) == (
        403, {"error": "the read-only token cannot change anything"})
    cookie = scheduled_web.login(ADMIN_TOKEN)
    foreign = scheduled_web.request("POST", f"/schedules/{NIGHTLY}/run", cookie=cookie,
                                    origin="http://evil.example")
    assert foreign.status == 403
    for job in ("tests.web.web_jobs.Unscheduled", "no.such.Job"):
        reply = scheduled_web.request("POST", f"/schedules/{job}/run", token=ADMIN_TOKEN,
                                      accept_json=True)
        assert (reply.status, reply.json()) == (404, {"error": f"no scheduled job {job!r}"})
    get = scheduled_web.request("GET", f"/schedules/{NIGHTLY}/run", token=ADMIN_TOKEN)
    assert get.status == 405
    assert driver.count_jobs(JobState.READY) == 0
