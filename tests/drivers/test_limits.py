"""Concurrency and rate limits, enforced by the claim: a job over its limit is skipped
(never reserved, no attempt charged) and the jobs behind it are taken meanwhile."""

from __future__ import annotations

import json
import threading
import time

from chappyd.drivers import open_driver
from chappyd.drivers.base import JobState, NewJob
from chappyd.limits import JobLimit

from .helpers import OTHER_OWNER, OWNER, payload, stats_of


def limited(key: str = "api", concurrency: int | None = 2, rate: int | None = None,
            window_s: float | None = None, n: int = 0) -> NewJob:
    text = payload(n=n, limit_key=key)
    return NewJob(text, time.time(), limit=JobLimit(key, concurrency, rate, window_s))


def plain(n: int) -> NewJob:
    return NewJob(payload(n=n), time.time())


def ns(reservations) -> list[int]:
    return [json.loads(r.payload)["n"] for r in reservations]


def limited_count(driver, queue: str = "default") -> int:
    return next((s.limited for s in driver.stats() if s.queue == queue), 0)


def test_the_claim_skips_jobs_over_their_concurrency_and_takes_the_next(driver):
    driver.push_many("default", [limited(n=i) for i in range(4)] + [plain(9)])
    taken = driver.reserve(["default"], OWNER, 30, 10)
    assert ns(taken) == [0, 1, 9]
    assert stats_of(driver) == (2, 0, 3, 0)
    assert limited_count(driver) == 2
    waiting = [driver.get(str(int(taken[1].id) + k)) for k in (1, 2)]
    assert [(r.state, r.attempts) for r in waiting] == [(JobState.READY, 0)] * 2


def test_a_slot_freed_by_ack_lets_the_next_one_start(driver):
    driver.push_many("default", [limited(n=i) for i in range(3)])
    first, _ = driver.reserve(["default"], OWNER, 30, 10)
    assert driver.reserve(["default"], OWNER, 30, 10) == []
    assert driver.ack(first)
    assert ns(driver.reserve(["default"], OWNER, 30, 10)) == [2]
    assert limited_count(driver) == 0


def test_every_way_out_of_running_frees_the_slot(driver):
    driver.push_many("default", [limited(concurrency=1, n=i) for i in range(6)])
    job = driver.reserve(["default"], OWNER, 30, 5)
    assert len(job) == 1
    assert driver.fail(job[0], "Boom: final")
    job = driver.reserve(["default"], OWNER, 30, 5)
    assert driver.retry(job[0], time.time() + 60, "Boom: again")
    job = driver.reserve(["default"], OWNER, 30, 5)
    assert driver.release(job) == 1
    job = driver.reserve(["default"], OWNER, 30, 5)
    assert driver.release_owner(OWNER) == 1
    job = driver.reserve(["default"], OWNER, 0.05, 5)
    assert len(job) == 1
    time.sleep(0.1)
    assert driver.expire_leases() == 1
    assert len(driver.reserve(["default"], OTHER_OWNER, 30, 5)) == 1


def test_limits_count_across_owners_and_connections(driver, other_driver):
    driver.push_many("default", [limited(n=i) for i in range(5)])
    assert len(driver.reserve(["default"], OWNER, 30, 1)) == 1
    assert len(other_driver.reserve(["default"], OTHER_OWNER, 30, 5)) == 1
    assert driver.reserve(["default"], OWNER, 30, 5) == []
    assert other_driver.reserve(["default"], OTHER_OWNER, 30, 5) == []


def test_each_limit_key_counts_on_its_own(driver):
    driver.push_many("default", [limited("api a", 1, n=0), limited("api a", 1, n=1),
                                 limited("api b", 1, n=2), limited("api b", 1, n=3)])
    assert ns(driver.reserve(["default"], OWNER, 30, 10)) == [0, 2]


def test_a_rate_allows_that_many_starts_per_window(driver):
    driver.push_many("default", [limited(concurrency=None, rate=3, window_s=1.0, n=i)
                                 for i in range(7)])
    first = driver.reserve(["default"], OWNER, 30, 10)
    assert ns(first) == [0, 1, 2]
    for reservation in first:
        driver.ack(reservation)  # finishing does not give a start back
    assert driver.reserve(["default"], OWNER, 30, 10) == []
    assert limited_count(driver) == 4
    time.sleep(1.05)
    assert ns(driver.reserve(["default"], OWNER, 30, 10)) == [3, 4, 5]


def test_concurrent_claims_never_exceed_the_limit(settings, driver):
    driver.push_many("default", [limited(concurrency=2, n=i) for i in range(8)])
    barrier = threading.Barrier(8)
    got: list[int] = []

    def claimer(k: int) -> None:
        own = open_driver(settings)
        try:
            own.paused_queues()  # connected before the race
            barrier.wait()
            got.append(len(own.reserve(["default"], f"h:1:{k}", 30, 4)))
        finally:
            own.close()

    threads = [threading.Thread(target=claimer, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sum(got) == 2
    assert stats_of(driver) == (6, 0, 2, 0)
