"""The reserve batch follows how long jobs take: fast jobs in batches, slow ones singly."""

from __future__ import annotations

import threading
import time

from chappyd.drivers.base import NewJob
from chappyd.drivers.redis import driver as redis_driver
from chappyd.drivers.redis.driver import PREFETCH_MAX, PREFETCH_WINDOW_S

from ..drivers.helpers import OWNER, payload, stats_of


def _work_off(driver, per_job_s: float, rounds: int) -> list[int]:
    sizes = []
    for _ in range(rounds):
        taken = driver.reserve(["default"], OWNER, 30, driver.prefetch)
        sizes.append(len(taken))
        for r in taken:
            end = time.monotonic() + per_job_s
            while time.monotonic() < end:  # a job that keeps the worker busy
                pass
            driver.ack(r)
    return sizes


def test_fast_jobs_are_reserved_in_batches_up_to_the_maximum(driver, monkeypatch):
    # "fast" relative to the window; a wide window keeps this true on a loaded machine
    monkeypatch.setattr(redis_driver, "PREFETCH_WINDOW_S", 1.0)
    driver.push_many("default", [NewJob(payload(), time.time())] * 400)
    _work_off(driver, 0.0, 6)
    assert driver.prefetch == PREFETCH_MAX


def test_slow_jobs_are_reserved_one_at_a_time(driver):
    driver.push_many("default", [NewJob(payload(), time.time())] * 40)
    sizes = _work_off(driver, 2 * PREFETCH_WINDOW_S, 4)
    assert driver.prefetch == 1
    assert sizes[-1] == 1


def test_an_idle_gap_does_not_shrink_the_batch(driver, monkeypatch):
    # A wide window keeps the no-op batches "fast" on a loaded machine (a CI run once
    # took > 5 ms to ack seven jobs, which rightly shrank the batch); the idle gap is
    # longer than the window, so counting it as work would shrink the batch to ~10.
    monkeypatch.setattr(redis_driver, "PREFETCH_WINDOW_S", 1.0)
    driver.push_many("default", [NewJob(payload(), time.time())] * 400)
    _work_off(driver, 0.0, 6)
    assert driver.prefetch == PREFETCH_MAX
    assert driver.reserve(["other"], OWNER, 30, PREFETCH_MAX) == []  # idle: a partial batch
    time.sleep(1.5)
    _work_off(driver, 0.0, 2)
    assert driver.prefetch == PREFETCH_MAX


def test_a_wake_up_reserves_in_the_same_round_trip_for_the_next_reserve(driver, other_driver):
    assert driver.reserve(["default"], OWNER, 30, 4) == []  # the worker went idle
    timer = threading.Timer(0.2, lambda: other_driver.push_many(
        "default", [NewJob(payload(), time.time())] * 2))
    timer.start()
    driver.wait(["default"], 5.0)
    timer.join()
    assert stats_of(driver) == (0, 0, 2, 0)  # reserved by Redis right after the wake-up
    taken = driver.reserve(["default"], OWNER, 30, 4)
    assert [r.attempts for r in taken] == [1, 1]
    assert all(driver.ack(r) for r in taken)


def test_jobs_reserved_on_wake_up_go_back_if_not_asked_for(driver, other_driver):
    assert driver.reserve(["default"], OWNER, 30, 4) == []
    other_driver.push_many("default", [NewJob(payload(), time.time())])
    driver.wait(["default"], 5.0)
    assert stats_of(driver) == (0, 0, 1, 0)
    assert driver.reserve(["other"], OWNER, 30, 4) == []  # a different request
    assert stats_of(driver) == (1, 0, 0, 0)
    # a worker that stops: what its last wake-up reserved comes back, attempt refunded
    assert driver.reserve(["q2"], OWNER, 30, 4) == []
    job_id = other_driver.push_many("q2", [NewJob(payload(), time.time())])[0]
    driver.wait(["q2"], 5.0)
    assert stats_of(driver, "q2") == (0, 0, 1, 0)
    driver.close()
    assert stats_of(other_driver, "q2") == (1, 0, 0, 0)
    assert other_driver.get(job_id).attempts == 0
