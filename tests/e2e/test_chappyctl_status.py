"""`chappyctl status`: counts per queue and the live masters, as --json and a table."""

from __future__ import annotations

import time

from chappyd.drivers.base import WorkerInfo

from .ctl_helpers import ctl, failed, ok_json, push, reserved, same_time


def test_json_counts_every_state_per_queue(backend_env, driver):
    push(driver, delay_s=-3)
    push(driver)
    push(driver, delay_s=600)
    reserved(driver, "emails")
    failed(driver, "emails")
    document = ok_json(backend_env, "status")
    assert list(document) == ["queues", "workers"]
    queues = {q["queue"]: q for q in document["queues"]}
    assert list(queues) == ["default", "emails"]
    default = queues["default"]
    assert list(default) == ["queue", "ready", "delayed", "reserved", "failed", "paused",
                             "oldest_ready_age_s", "limited"]
    assert {k: v for k, v in default.items() if k != "oldest_ready_age_s"} == {
        "queue": "default", "ready": 2, "delayed": 1, "reserved": 0, "failed": 0,
        "paused": False, "limited": 0}
    assert 3.0 <= default["oldest_ready_age_s"] < 30
    assert queues["emails"] == {"queue": "emails", "ready": 0, "delayed": 0, "reserved": 1,
                                "failed": 1, "paused": False, "oldest_ready_age_s": None,
                                "limited": 0}
    assert document["workers"] == []


def test_json_lists_live_masters_with_iso_times(backend_env, driver):
    now = time.time()
    info = WorkerInfo("web-1", 4242, ("high", "default"), 4, 1, 17, now - 3600, now - 1)
    driver.heartbeat(info)
    driver.heartbeat(WorkerInfo("web-2", 7, ("other",), 2, 0, 0, now, now))
    document = ok_json(backend_env, "status")
    by_host = {w["host"]: w for w in document["workers"]}
    worker = by_host["web-1"]
    assert list(worker) == ["host", "pid", "queues", "workers", "busy", "jobs_done",
                            "started_at", "last_seen"]
    assert {k: worker[k] for k in ("pid", "queues", "workers", "busy", "jobs_done")} == {
        "pid": 4242, "queues": ["high", "default"], "workers": 4, "busy": 1, "jobs_done": 17}
    assert same_time(worker["started_at"], info.started_at)
    assert same_time(worker["last_seen"], info.last_seen)
    # a live worker's queues are listed even without jobs (docs/design.md §7)
    assert {q["queue"] for q in document["queues"]} == {"high", "default", "other"}


def test_queue_filter_keeps_that_queue_and_its_workers(backend_env, driver):
    push(driver, "emails")
    push(driver, "other")
    now = time.time()
    driver.heartbeat(WorkerInfo("h", 1, ("emails",), 1, 0, 0, now, now))
    driver.heartbeat(WorkerInfo("h", 2, ("other",), 1, 0, 0, now, now))
    document = ok_json(backend_env, "status", "--queue", "emails")
    assert [q["queue"] for q in document["queues"]] == ["emails"]
    assert [w["pid"] for w in document["workers"]] == [1]


def test_queue_filter_on_an_empty_queue_gives_zeros(backend_env, driver):
    document = ok_json(backend_env, "status", "--queue", "nothing-here")
    assert document == {"queues": [{"queue": "nothing-here", "ready": 0, "delayed": 0,
                                    "reserved": 0, "failed": 0, "paused": False,
                                    "oldest_ready_age_s": None, "limited": 0}],
                        "workers": []}


def test_human_table_shows_counts_hosts_and_busy_idle(backend_env, driver):
    push(driver, "emails")
    now = time.time()
    driver.heartbeat(WorkerInfo("web-1", 4242, ("emails",), 4, 1, 17, now - 3700, now))
    result = ctl(backend_env, "status")
    assert (result.returncode, result.stderr) == (0, "")
    lines = result.stdout.splitlines()
    assert lines[0].startswith("backend: ")
    (row,) = [line for line in lines if line.startswith("emails")]
    assert row.split()[:6] == ["emails", "1", "0", "0", "0", "0"]
    (host,) = [line for line in lines if line.startswith("web-1")]
    assert host.split()[:6] == ["web-1", "4242", "1", "3", "17", "1h01m"]
    assert host.endswith("  emails")


def test_empty_store_says_so(backend_env, driver):
    result = ctl(backend_env, "status")
    assert result.returncode == 0
    assert "(no jobs)" in result.stdout and "(no live workers)" in result.stdout
    assert ok_json(backend_env, "status") == {"queues": [], "workers": []}
