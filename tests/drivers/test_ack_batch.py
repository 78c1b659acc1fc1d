"""ack_many and ack_and_reserve: a batch of acks, alone or handed in with the next
claim, each exactly what ack() does to its job (token-fenced; the unique key and the
limit slot freed), and the claim exactly what reserve() does."""

from __future__ import annotations

import json
import time
from dataclasses import replace

from chappyd.drivers.base import ExistingId, JobState, NewJob
from chappyd.limits import JobLimit

from .helpers import OTHER_OWNER, OWNER, payload, push, reserve_one, stats_of
from .test_unique import push_unique


def ns(reservations) -> list[int]:
    return [json.loads(r.payload)["n"] for r in reservations]


def push_n(driver, queue: str, *ns_: int) -> list[str]:
    return driver.push_many(queue, [NewJob(payload(n=n), time.time()) for n in ns_])


def limited(n: int, concurrency: int = 1) -> NewJob:
    return NewJob(payload(n=n, limit_key="api"), time.time(),
                  limit=JobLimit("api", concurrency, None, None))


def test_ack_many_deletes_the_fenced_jobs_and_skips_stale_tokens(driver):
    ids = push_n(driver, "default", 0, 1, 2)
    first, second, third = driver.reserve(["default"], OWNER, 30, 3)
    assert driver.ack_many([first, replace(second, token="stale"), third]) == 2
    assert driver.get(ids[0]) is None and driver.get(ids[2]) is None
    assert driver.get(ids[1]).state == JobState.RESERVED
    assert stats_of(driver) == (0, 0, 1, 0)


def test_a_job_taken_over_after_its_lease_ran_out_keeps_running_for_its_new_owner(driver):
    push_n(driver, "default", 0, 1)
    old = driver.reserve(["default"], OWNER, 0.05, 2)
    assert len(old) == 2
    time.sleep(0.1)
    assert driver.expire_leases() == 2
    new = driver.reserve(["default"], OTHER_OWNER, 30, 2)
    assert sorted(r.id for r in new) == sorted(r.id for r in old)
    assert driver.ack_many(old) == 0
    assert [(r.id, r.attempts) for r in driver.held_by(OTHER_OWNER)] == sorted(
        ((r.id, 2) for r in new), key=lambda pair: int(pair[0]))
    assert stats_of(driver) == (0, 0, 2, 0)
    assert driver.ack_many(new) == 2
    assert stats_of(driver) == (0, 0, 0, 0)


def test_ack_many_counts_a_job_named_twice_once_and_nothing_for_no_jobs(driver):
    push(driver)
    r = reserve_one(driver)
    assert driver.ack_many([]) == 0
    assert driver.ack_many([replace(r, token="stale"), r, r]) == 1
    assert driver.ack_many([r]) == 0
    assert driver.get(r.id) is None


def test_ack_many_acks_jobs_of_several_queues(driver):
    a = push_n(driver, "alpha", 0, 1)
    b = push_n(driver, "beta", 2)
    taken = driver.reserve(["alpha", "beta"], OWNER, 30, 3)
    assert sorted(r.id for r in taken) == sorted(a + b)
    assert driver.ack_many(taken) == 3
    assert [driver.get(job_id) for job_id in a + b] == [None, None, None]
    assert stats_of(driver, "alpha") == stats_of(driver, "beta") == (0, 0, 0, 0)


def test_ack_and_reserve_acks_then_reserves_in_priority_order(driver):
    push_n(driver, "low", 0)
    done = reserve_one(driver, ("low",))
    push_n(driver, "low", 3, 4)
    push_n(driver, "high", 1, 2)
    acked, taken = driver.ack_and_reserve([done], ["high", "low"], OWNER, 30, 3)
    assert (acked, ns(taken)) == (1, [1, 2, 3])
    assert driver.get(done.id) is None
    assert [(r.queue, r.attempts) for r in taken] == [("high", 1), ("high", 1), ("low", 1)]
    assert all(driver.get(r.id).state == JobState.RESERVED for r in taken)
    assert stats_of(driver, "low") == (1, 0, 1, 0)


def test_ack_and_reserve_skips_paused_queues_and_still_acks(driver):
    push_n(driver, "high", 0)
    done = reserve_one(driver, ("high",))
    push_n(driver, "high", 1)
    push_n(driver, "low", 2)
    driver.set_paused("high", True)
    acked, taken = driver.ack_and_reserve([done], ["high", "low"], OWNER, 30, 5)
    assert (acked, ns(taken)) == (1, [2])
    assert driver.get(done.id) is None
    assert stats_of(driver, "high") == (1, 0, 0, 0)


def test_ack_and_reserve_takes_at_most_its_limit(driver):
    push_n(driver, "default", 0)
    done = reserve_one(driver)
    push_n(driver, "default", 1, 2, 3, 4)
    acked, taken = driver.ack_and_reserve([done], ["default"], OWNER, 30, 2)
    assert (acked, ns(taken)) == (1, [1, 2])
    assert stats_of(driver) == (2, 0, 2, 0)


def test_ack_and_reserve_with_nothing_to_reserve_still_acks(driver):
    push_n(driver, "default", 0, 1)
    first, second = driver.reserve(["default"], OWNER, 30, 2)
    assert driver.ack_and_reserve([first], ["default"], OWNER, 30, 4) == (1, [])
    push_n(driver, "default", 2)
    assert driver.ack_and_reserve([second], ["default"], OWNER, 30, 0) == (1, [])
    assert stats_of(driver) == (1, 0, 0, 0)


def test_ack_and_reserve_without_acks_is_a_reserve(driver):
    push_n(driver, "default", 0, 1)
    acked, taken = driver.ack_and_reserve([], ["default"], OWNER, 30, 1)
    assert (acked, ns(taken), taken[0].attempts) == (0, [0], 1)
    stale = replace(taken[0], token="stale")
    acked, taken = driver.ack_and_reserve([stale], ["default"], OWNER, 30, 1)
    assert (acked, ns(taken)) == (0, [1])
    assert stats_of(driver) == (0, 0, 2, 0)


def test_ack_and_reserve_acks_jobs_of_other_queues_than_it_reserves_from(driver):
    push_n(driver, "alpha", 0)
    push_n(driver, "beta", 1)
    done = driver.reserve(["alpha", "beta"], OWNER, 30, 2)
    push_n(driver, "gamma", 2)
    acked, taken = driver.ack_and_reserve(done, ["gamma"], OWNER, 30, 4)
    assert (acked, ns(taken)) == (2, [2])
    assert [driver.get(r.id) for r in done] == [None, None]


def test_a_done_key_is_free_after_ack_many(driver):
    first = push_unique(driver, "k1", "done", n=1)
    r = reserve_one(driver)
    assert push_unique(driver, "k1", "done", n=2) == first  # held while it runs
    assert driver.ack_many([r]) == 1
    second = push_unique(driver, "k1", "done", n=3)
    assert second != first and not isinstance(second, ExistingId)
    assert push_unique(driver, "k1", "done", n=4) == second


def test_a_done_key_is_free_after_ack_and_reserve(driver):
    first = push_unique(driver, "k1", "done", n=1)
    r = reserve_one(driver)
    assert driver.ack_and_reserve([r], ["default"], OWNER, 30, 1) == (1, [])
    second = push_unique(driver, "k1", "done", n=2)
    assert second != first and not isinstance(second, ExistingId)


def test_a_stale_ack_keeps_the_done_key_of_the_new_owner(driver):
    first = push_unique(driver, "k1", "done", n=1)
    r = reserve_one(driver)
    assert driver.ack_many([replace(r, token="stale")]) == 0
    assert push_unique(driver, "k1", "done", n=2) == first


def test_a_concurrency_slot_is_free_after_ack_many(driver):
    driver.push_many("default", [limited(n) for n in range(3)])
    first = driver.reserve(["default"], OWNER, 30, 10)
    assert ns(first) == [0]
    assert driver.reserve(["default"], OWNER, 30, 10) == []
    assert driver.ack_many(first) == 1
    assert ns(driver.reserve(["default"], OWNER, 30, 10)) == [1]


def test_ack_and_reserve_claims_the_slot_its_own_acks_freed(driver):
    driver.push_many("default", [limited(n, concurrency=2) for n in range(5)])
    running = driver.reserve(["default"], OWNER, 30, 10)
    assert ns(running) == [0, 1]
    assert driver.reserve(["default"], OWNER, 30, 10) == []
    acked, taken = driver.ack_and_reserve(running, ["default"], OWNER, 30, 10)
    assert (acked, ns(taken)) == (2, [2, 3])
    acked, taken = driver.ack_and_reserve(taken[:1], ["default"], OWNER, 30, 10)
    assert (acked, ns(taken)) == (1, [4])
    assert stats_of(driver) == (0, 0, 2, 0)
