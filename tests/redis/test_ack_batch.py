"""ack_and_reserve on one Redis: the acks' scripts and the reserve script in one
pipelined round trip, the batch sizing and the wake-up's reserve as for reserve()."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import redis
from redis.connection import Connection

from chappyd.drivers.base import NewJob
from chappyd.drivers.redis import driver as redis_driver
from chappyd.drivers.redis.driver import PREFETCH_MAX

from ..drivers.helpers import OWNER, payload, stats_of


def sends(monkeypatch) -> Callable[[], int]:
    """How many times a client connection sent to Redis since the last call: each send
    waits for its replies, one round trip."""
    count = [0]
    real = Connection.send_packed_command

    def counted(self, *args, **kwargs):
        count[0] += 1
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Connection, "send_packed_command", counted)

    def taken() -> int:
        n, count[0] = count[0], 0
        return n
    return taken


def test_acks_of_two_queues_and_the_reserve_are_one_round_trip(driver, monkeypatch):
    driver.push_many("a", [NewJob(payload(), time.time())] * 4)
    driver.push_many("b", [NewJob(payload(), time.time())] * 4)
    first = driver.reserve(["a", "b"], OWNER, 30, 2) + driver.reserve(["b"], OWNER, 30, 2)
    rounds = sends(monkeypatch)
    acked, second = driver.ack_and_reserve(first, ["a", "b"], OWNER, 30, 3)
    assert (acked, [r.queue for r in second], rounds()) == (4, ["a", "a", "b"], 1)
    assert driver.ack_and_reserve([], ["b"], OWNER, 30, 1)[0] == 0
    assert rounds() == 1  # a reserve, as reserve() sends it
    assert driver.ack_many(second) == 3
    assert rounds() == 1
    assert stats_of(driver, "a") == (0, 0, 0, 0) and stats_of(driver, "b") == (0, 0, 1, 0)


def test_batches_handed_in_with_the_claim_grow_as_reserve_batches_do(driver, monkeypatch):
    monkeypatch.setattr(redis_driver, "PREFETCH_WINDOW_S", 1.0)  # see test_prefetch.py
    driver.push_many("default", [NewJob(payload(), time.time())] * 400)
    done: list = []
    for _ in range(6):
        _, done = driver.ack_and_reserve(done, ["default"], OWNER, 30, driver.prefetch)
    assert driver.prefetch == PREFETCH_MAX


def test_a_wake_up_reserve_is_handed_out_with_the_acks_in_one_round_trip(
        driver, other_driver, monkeypatch):
    other_driver.push_many("default", [NewJob(payload(), time.time())])
    (done,) = driver.reserve(["default"], OWNER, 30, 4)
    timer = threading.Timer(0.2, lambda: other_driver.push_many(
        "default", [NewJob(payload(), time.time())] * 2))
    timer.start()
    driver.wait(["default"], 5.0)  # reserves the two right after the wake-up
    timer.join()
    rounds = sends(monkeypatch)
    acked, taken = driver.ack_and_reserve([done], ["default"], OWNER, 30, 4)
    assert (acked, len(taken), rounds()) == (1, 2, 1)
    assert stats_of(driver) == (0, 0, 2, 0)


def test_after_a_script_flush_the_acks_and_the_reserve_each_run_once(driver, backend_env):
    driver.push_many("a", [NewJob(payload(), time.time())] * 2)
    driver.push_many("b", [NewJob(payload(), time.time())] * 3)
    first = driver.reserve(["a", "b"], OWNER, 30, 3)
    redis.Redis.from_url(backend_env["REDIS_URL"]).script_flush()
    acked, taken = driver.ack_and_reserve(first, ["b"], OWNER, 30, 5)  # NOSCRIPT: again
    assert (acked, [r.attempts for r in taken]) == (3, [1, 1])
    assert stats_of(driver, "a") == (0, 0, 0, 0) and stats_of(driver, "b") == (0, 0, 2, 0)
