"""What each page shows, as HTML and as JSON, over the real backend."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from chappyd.drivers.base import NewJob, TickOutcome, WorkerInfo
from tests.web.conftest import (
    ADMIN_TOKEN,
    NIGHTLY,
    NIGHTLY_QUEUE,
    failed_job,
    next_nightly_run,
    running_web,
)


def _get(web, path):
    reply = web.request("GET", path, token=ADMIN_TOKEN, accept_json=True)
    assert reply.status == 200, (path, reply.text)
    return reply.json()


def test_overview_lists_queues_with_depths_and_workers_by_host(web, driver):
    driver.push_many("emails", [NewJob('{"job": "a"}', time.time() - 5),
                                NewJob('{"job": "a"}', time.time() + 60)])
    failed_job(driver, "reports")
    now = time.time()
    driver.heartbeat(WorkerInfo("web-host-1", 4242, ("emails",), 4, 1, 17, now - 60, now))
    doc = _get(web, "/")
    queues = {q["queue"]: q for q in doc["queues"]}
    assert sorted(queues) == ["emails", "reports"]
    assert (queues["emails"]["ready"], queues["emails"]["delayed"]) == (1, 1)
    assert queues["emails"]["oldest_ready_age_s"] >= 4
    assert queues["reports"]["failed"] == 1
    assert doc["hosts"] == [{"host": "web-host-1", "masters": 1, "workers": 4, "busy": 1}]
    assert doc["totals"] == {"ready": 1, "delayed": 1, "reserved": 0, "failed": 1}
    html = web.request("GET", "/", token=ADMIN_TOKEN).text
    assert '<a href="/queues/emails">emails</a>' in html and "web-host-1" in html


def test_failed_pages_fifty_newest_first_and_filters(web, driver):
    ids = [failed_job(driver, "emails" if i % 2 else "reports",
                      "app.A" if i % 3 else "app.B") for i in range(120)]
    newest = list(reversed(ids))
    first = _get(web, "/failed")
    assert [j["id"] for j in first["jobs"]] == newest[:50]
    assert first["pagination"] == {"page": 1, "pages": 3, "total": 120, "per_page": 50,
                                   "offset": 0}
    third = _get(web, "/failed?page=3")
    assert [j["id"] for j in third["jobs"]] == newest[100:]
    emails = _get(web, "/failed?queue=emails")
    assert [j["id"] for j in emails["jobs"]] == [i for i in newest if i in ids[1::2]][:50]
    assert emails["pagination"]["total"] == 60
    b_jobs = _get(web, "/failed?job=app.B&queue=reports")
    expected = [ids[i] for i in range(120) if i % 2 == 0 and i % 3 == 0][::-1]
    assert [j["id"] for j in b_jobs["jobs"]] == expected
    assert b_jobs["pagination"]["total"] == len(expected) == 20
    row = first["jobs"][0]
    assert (row["queue"], row["attempts"], row["exception"], row["payload"]["data"]) == (
        "emails", 1, "RuntimeError: boom", {"user_id": 7})
    html = web.request("GET", "/failed?page=2", token=ADMIN_TOKEN).text
    assert "page 2 of 3" in html and 'href="/failed?page=3"' in html


def test_bad_page_numbers_and_queue_names_are_refused(web):
    for path in ("/failed?page=0", "/failed?page=x", "/failed?page=-1", "/failed?queue=a%20b",
                 "/queues/default?state=failed"):
        reply = web.request("GET", path, token=ADMIN_TOKEN, accept_json=True)
        assert reply.status == 400, path


def test_a_job_page_shows_exception_and_payload_escaped(web, driver):
    job_id = failed_job(driver, error="ValueError: <script>alert(1)</script>\n  line 2")
    doc = _get(web, f"/jobs/{job_id}")["job"]
    assert (doc["id"], doc["state"], doc["job"], doc["exception"]) == (
        job_id, "failed", "app.jobs.Send", "ValueError: <script>alert(1)</script>\n  line 2")
    html = web.request("GET", f"/jobs/{job_id}", token=ADMIN_TOKEN).text
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&#34;user_id&#34;: 7" in html


def test_an_unknown_or_malformed_job_id_is_not_found(web):
    for raw in ("999999", "abc", "-1", "99999999999999999999"):
        reply = web.request("GET", f"/jobs/{raw}", token=ADMIN_TOKEN, accept_json=True)
        assert reply.status == 404, raw


def test_a_queue_page_lists_its_jobs_by_state(web, driver):
    ready = driver.push_many("emails", [NewJob('{"job": "a"}', time.time() - 2),
                                        NewJob('{"job": "b"}', time.time() - 1)])
    delayed = driver.push_many("emails", [NewJob('{"job": "c"}', time.time() + 60)])
    doc = _get(web, "/queues/emails")
    assert (doc["queue"]["ready"], doc["state"]) == (2, "ready")
    assert [j["id"] for j in doc["jobs"]] == [ready[1], ready[0]]
    assert [j["id"] for j in _get(web, "/queues/emails?state=delayed")["jobs"]] == delayed
    assert _get(web, "/queues/empty-one")["queue"]["ready"] == 0


def test_workers_page_lists_live_masters(web, driver):
    now = time.time()
    driver.heartbeat(WorkerInfo("h1", 11, ("a", "b"), 3, 2, 5, now - 10, now))
    (row,) = _get(web, "/workers")["workers"]
    assert (row["host"], row["pid"], row["queues"], row["busy"], row["idle"]) == (
        "h1", 11, ["a", "b"], 2, 1)


def test_schedules_page_without_scheduled_jobs_says_so(web):
    assert _get(web, "/schedules") == {"schedules": [], "problem": None}
    assert "No schedules" in web.request("GET", "/schedules", token=ADMIN_TOKEN).text


def test_schedules_page_lists_next_and_last_run_of_each_schedule(scheduled_web, driver):
    before = datetime.now(UTC)
    doc = _get(scheduled_web, "/schedules")
    expected = {"job": NIGHTLY, "queue": NIGHTLY_QUEUE, "schedule": "30 2 * * *",
                "timezone": "UTC", "next_run": next_nightly_run(before), "last_run": None}
    assert doc == {"schedules": [expected], "problem": None}
    tick = int(datetime(2026, 11, 30, 2, 30, tzinfo=UTC).timestamp())
    payload = json.dumps({"job": NIGHTLY, "data": {}, "max_attempts": 3})
    result = driver.enqueue_tick(NIGHTLY_QUEUE, NIGHTLY, tick, NewJob(payload, tick))
    assert result.outcome is TickOutcome.ENQUEUED
    assert _get(scheduled_web, "/schedules")["schedules"] == [
        {**expected, "last_run": "2026-11-30T02:30:00.000Z"}]
    html = scheduled_web.request("GET", "/schedules", token=ADMIN_TOKEN).text
    assert "2026-11-30T02:30:00.000Z" in html and next_nightly_run(before) in html
    assert f'action="/schedules/{NIGHTLY}/run"' in html and "Run now" in html


def test_schedules_page_reports_job_modules_that_do_not_load(sqlite_env, tmp_path):
    with running_web({**sqlite_env, "CHAPPY_JOBS": "tests.web.no_such_module"},
                     tmp_path) as web:
        doc = _get(web, "/schedules")
    assert doc["schedules"] == []
    assert doc["problem"].startswith("ConfigError: ")
    assert "tests.web.no_such_module" in doc["problem"]


def test_pages_carry_headers_that_forbid_framing_and_scripts(web):
    reply = web.request("GET", "/", token=ADMIN_TOKEN)
    assert reply.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in reply.headers["content-security-policy"]
    assert "script-src" not in reply.headers["content-security-policy"]  # default-src 'none'
    assert reply.headers["cache-control"] == "no-store"
    css = web.request("GET", "/static/style.css")
    assert (css.status, css.headers["content-type"]) == (200, "text/css; charset=utf-8")
