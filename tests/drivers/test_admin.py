"""What chappyctl reads and repairs: stats, failed jobs, retry_failed, forget, flush,
clear, heartbeats."""

from __future__ import annotations

import time

from chappyd.drivers.base import JobState, WorkerInfo

from .helpers import push, reserve_one, stats_of


def _failed(driver, queue="default", error="E: x"):
    job_id = push(driver, queue)
    r = reserve_one(driver, (queue,))
    driver.fail(r, error)
    return job_id


def test_stats_count_each_state_and_the_oldest_ready_age(driver):
    push(driver, delay_s=-5)
    push(driver)
    push(driver, delay_s=60)
    push(driver, "other")
    reserve_one(driver, ("other",))
    _failed(driver, "third")
    stats = {s.queue: s for s in driver.stats()}
    assert sorted(stats) == ["default", "other", "third"]
    d = stats["default"]
    assert (d.ready, d.delayed, d.reserved, d.failed, d.paused) == (2, 1, 0, 0, False)
    assert 4.0 <= d.oldest_ready_age_s < 30
    assert stats["other"].oldest_ready_age_s is None
    assert stats_of(driver, "other") == (0, 0, 1, 0)
    assert stats_of(driver, "third") == (0, 0, 0, 1)


def test_has_work_is_a_ready_or_reserved_job_of_the_queues_named(driver):
    assert driver.has_work(["default", "other"]) is False
    push(driver, delay_s=60)
    _failed(driver, "default")
    push(driver, "other")
    assert driver.has_work(["default"]) is False  # delayed and failed are not work
    assert driver.has_work(["default", "other"]) is True
    reserve_one(driver, ("other",))
    assert driver.has_work(["other"]) is True  # reserved: a job still running
    assert driver.has_work(["third"]) is False
    push(driver, delay_s=-1)  # a delayed job now due
    assert driver.has_work(["default"]) is True


def test_has_work_counts_a_paused_queues_ready_job_as_stats_does(driver):
    push(driver, "quiet")
    driver.set_paused("quiet", True)
    assert driver.has_work(["quiet"]) is True
    assert stats_of(driver, "quiet")[0] == 1


def test_stats_lists_a_paused_empty_queue(driver):
    driver.set_paused("quiet", True)
    (s,) = [s for s in driver.stats() if s.queue == "quiet"]
    assert (s.ready, s.paused, s.oldest_ready_age_s) == (0, True, None)


def test_failed_lists_newest_first_with_limit_and_queue(driver):
    a = _failed(driver, error="A: 1")
    time.sleep(0.01)
    b = _failed(driver, error="B: 2")
    c = _failed(driver, "other")
    assert [r.id for r in driver.failed()] == [c, b, a]
    assert [r.id for r in driver.failed(limit=2)] == [c, b]
    assert [r.id for r in driver.failed(queue="default")] == [b, a]
    record = driver.failed(queue="default")[0]
    assert (record.state, record.exception, record.attempts) == (JobState.FAILED, "B: 2", 1)


def test_retry_failed_by_id_resets_attempts_and_keeps_the_exception(driver):
    a = _failed(driver, error="A: 1")
    b = _failed(driver)
    assert driver.retry_failed([a]) == 1
    record = driver.get(a)
    assert (record.state, record.attempts, record.exception) == (JobState.READY, 0, "A: 1")
    assert driver.get(b).state == JobState.FAILED
    assert driver.retry_failed(["999999", "nonsense"]) == 0


def test_retry_failed_all_and_by_queue(driver):
    a = _failed(driver)
    b = _failed(driver, "other")
    assert driver.retry_failed(None, queue="other") == 1
    assert driver.get(b).state == JobState.READY and driver.get(a).state == JobState.FAILED
    assert driver.retry_failed(None) == 1
    assert driver.get(a).state == JobState.READY


def test_retry_failed_does_not_touch_live_jobs(driver):
    ready = push(driver)
    assert driver.retry_failed([ready]) == 0
    assert driver.retry_failed(None) == 0


def test_forget_deletes_only_failed_jobs(driver):
    failed = _failed(driver)
    ready = push(driver)
    assert driver.forget([failed, ready, "123456789"]) == 1
    assert driver.get(failed) is None
    assert driver.get(ready).state == JobState.READY


def test_flush_deletes_failed_jobs_of_a_queue_or_all(driver):
    a = _failed(driver)
    b = _failed(driver, "other")
    ready = push(driver)
    assert driver.flush("other") == 1
    assert driver.get(b) is None and driver.get(a) is not None
    assert driver.flush() == 1
    assert driver.get(a) is None
    assert driver.get(ready) is not None


def test_clear_deletes_ready_and_delayed_but_not_reserved_or_failed(driver):
    failed = _failed(driver)
    reserved = push(driver)
    assert reserve_one(driver).id == reserved
    push(driver)
    push(driver, delay_s=60)
    other = push(driver, "other")
    assert driver.clear("default") == 2
    assert driver.get(failed).state == JobState.FAILED
    assert driver.get(reserved).state == JobState.RESERVED
    assert driver.get(other).state == JobState.READY
    assert stats_of(driver) == (0, 0, 1, 1)


def test_heartbeats_list_live_masters_and_drop_removed_ones(driver):
    now = time.time()
    info = WorkerInfo("host-a", 4242, ("high", "default"), 4, 1, 17, now - 60, now)
    driver.heartbeat(info)
    driver.heartbeat(WorkerInfo("host-b", 7, ("default",), 2, 0, 0, now, now))
    workers = {(w.host, w.pid): w for w in driver.workers()}
    assert workers[("host-a", 4242)] == info
    driver.remove_worker("host-b", 7)
    assert [(w.host, w.pid) for w in driver.workers()] == [("host-a", 4242)]


def test_stale_heartbeats_drop_out(driver):
    old = time.time() - 16
    driver.heartbeat(WorkerInfo("host-old", 1, ("default",), 1, 0, 0, old, old))
    assert driver.workers() == []


def test_a_live_workers_queue_is_listed_in_stats(driver):
    now = time.time()
    driver.heartbeat(WorkerInfo("h", 1, ("idle-queue",), 1, 0, 0, now, now))
    assert "idle-queue" in [s.queue for s in driver.stats()]
