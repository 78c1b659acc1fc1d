"""`chappyctl failed` and `show`: what failed, and any one job, field by field."""

from __future__ import annotations

import json
import time

from .ctl_helpers import ctl, failed, ok_json, payload, push, reserved, same_time, snapshot

TRACE = 'RuntimeError: smtp down\nTraceback (most recent call last):\n  File "x.py", line 3\n'


def test_failed_json_fields_newest_first(backend_env, driver):
    first = failed(driver, text=payload("app.jobs.A", user_id=1), error="A: one")
    time.sleep(0.01)  # failed_at orders the list; make the two distinct
    second = failed(driver, "emails", text=payload("app.jobs.B", user_id=2), error=TRACE)
    push(driver)  # not failed: not listed
    document = ok_json(backend_env, "failed")
    assert [d["id"] for d in document] == [second, first]
    entry = document[0]
    assert list(entry) == ["id", "queue", "job", "attempts", "failed_at", "exception",
                           "payload"]
    record = driver.get(second)
    assert entry["id"] == second and isinstance(entry["id"], str)
    assert (entry["queue"], entry["job"], entry["attempts"], entry["exception"]) == (
        "emails", "app.jobs.B", 1, TRACE)
    assert same_time(entry["failed_at"], record.failed_at)
    assert entry["payload"] == json.loads(record.payload)
    assert entry["payload"]["data"] == {"user_id": 2}


def test_failed_filters_by_queue_and_limits(backend_env, driver):
    ids = [failed(driver, "emails") for _ in range(3)]
    other = failed(driver, "other")
    listed = [d["id"] for d in ok_json(backend_env, "failed", "--queue", "emails")]
    assert sorted(listed) == sorted(ids)  # failures within one clock tick may tie
    assert [d["id"] for d in ok_json(backend_env, "failed", "--queue", "other")] == [other]
    assert len(ok_json(backend_env, "failed", "--limit", "2")) == 2


def test_an_undecodable_payload_is_shown_as_raw_text(backend_env, driver):
    raw = failed(driver, text="not json {", error="InvalidPayload: payload is not valid JSON")
    array = failed(driver, text="[1, 2]", error="InvalidPayload: payload is a JSON list")
    by_id = {d["id"]: d for d in ok_json(backend_env, "failed")}
    assert (by_id[raw]["payload"], by_id[raw]["job"]) == ("not json {", None)
    assert (by_id[array]["payload"], by_id[array]["job"]) == ("[1, 2]", None)


def test_failed_human_table_and_the_laravel_alias(backend_env, driver):
    job_id = failed(driver, text=payload("app.jobs.A"), error=TRACE)
    result = ctl(backend_env, "queue:failed")
    assert (result.returncode, result.stderr) == (0, "")
    header, row = result.stdout.splitlines()
    assert header.split()[:4] == ["ID", "QUEUE", "JOB", "ATT"]
    assert row.split()[:4] == [job_id, "default", "app.jobs.A", "1"]
    assert row.endswith("RuntimeError: smtp down")


def test_failed_with_none_says_so(backend_env, driver):
    push(driver)
    result = ctl(backend_env, "failed")
    assert (result.returncode, result.stdout, result.stderr) == (0, "(no failed jobs)\n", "")
    assert ok_json(backend_env, "failed") == []


def test_show_json_of_a_job_in_each_state(backend_env, driver):
    ready = push(driver, text=payload("app.jobs.R", n=1))
    delayed = push(driver, delay_s=600)
    held = reserved(driver, "held")
    dead = failed(driver, "dead", error=TRACE)
    states = {job_id: ok_json(backend_env, "show", job_id)["state"]
              for job_id in (ready, delayed, held, dead)}
    assert states == {ready: "ready", delayed: "delayed", held: "reserved", dead: "failed"}
    document = ok_json(backend_env, "show", ready)
    assert list(document) == ["id", "queue", "job", "state", "attempts", "max_attempts",
                              "created_at", "available_at", "reserved_at", "failed_at",
                              "exception", "payload"]
    record = driver.get(ready)
    assert {k: document[k] for k in ("id", "queue", "job", "attempts", "max_attempts",
                                     "reserved_at", "failed_at", "exception")} == {
        "id": ready, "queue": "default", "job": "app.jobs.R", "attempts": 0, "max_attempts": 3,
        "reserved_at": None, "failed_at": None, "exception": None}
    assert same_time(document["available_at"], record.available_at)
    assert same_time(document["created_at"], record.created_at)
    assert document["payload"] == json.loads(record.payload)
    shown = ok_json(backend_env, "show", dead)
    assert (shown["exception"], shown["attempts"]) == (TRACE, 1)
    assert same_time(shown["failed_at"], driver.get(dead).failed_at)
    assert same_time(ok_json(backend_env, "show", held)["reserved_at"],
                     driver.get(held).reserved_at)


def test_show_prints_the_full_exception(backend_env, driver):
    job_id = failed(driver, error=TRACE)
    result = ctl(backend_env, "show", job_id)
    assert (result.returncode, result.stderr) == (0, "")
    assert "state:        failed\n" in result.stdout
    assert result.stdout.endswith("exception:\n" + "".join(
        f"  {line}\n" for line in TRACE.splitlines()))


def test_show_of_an_unknown_id_exits_1(backend_env, driver):
    job_id = failed(driver)
    before = snapshot(driver, [job_id])
    result = ctl(backend_env, "show", "999999", "--json")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == "chappyctl: error: no job with id 999999\n"
    result = ctl(backend_env, "show", "not-an-id", "--json")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == ("chappyctl: error: ID='not-an-id': a job id is a whole number "
                             "from 0 to 9223372036854775807\n")
    assert snapshot(driver, [job_id]) == before
