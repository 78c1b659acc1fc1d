"""Chappy.php producers: a raw JSON payload LPUSHed onto the plain list named after the
queue is taken in and run like any other job."""

from __future__ import annotations

import json
import time

import redis

from chappyd.drivers.base import JobState

from ..drivers.helpers import OWNER, stats_of
from .helpers import start_worker, stop_workers, wait_until
from .jobs import recorded


def php_payload(n: int, available_at: float | None = None) -> str:
    # what Chappy.php's RedisQueue::push writes: integer unix seconds
    return json.dumps({"job": "App\\Jobs\\Record", "data": {"n": n},
                       "available_at": int(available_at or time.time()), "max_attempts": 3})


def test_a_php_payload_lpushed_onto_the_plain_list_runs(backend_env, tmp_path):
    env = {**backend_env, "CHAPPY_QUEUES": "emails"}
    raw = redis.Redis.from_url(env["REDIS_URL"])
    raw.lpush("emails", php_payload(1), php_payload(2))
    record = tmp_path / "done"
    worker = start_worker(env, record, "--stop-when-empty")
    try:
        worker.wait(timeout=30)
    finally:
        stop_workers([worker])
    assert worker.returncode == 0
    lines = record.read_text().split("\n")
    assert [line.split()[1] for line in lines if line] == ["1", "2"]  # FIFO, as LPUSH/RPOP
    assert raw.llen("emails") == 0


def test_a_future_available_at_is_delayed_until_then(driver, backend_env):
    raw = redis.Redis.from_url(backend_env["REDIS_URL"])
    raw.lpush("default", php_payload(1, available_at=time.time() + 2))
    assert driver.reserve(["default"], OWNER, 30, 5) == []
    assert stats_of(driver) == (0, 1, 0, 0)
    wait_until(lambda: driver.reserve(["default"], OWNER, 30, 5), 4.0, "the job to fall due")
    assert stats_of(driver) == (0, 0, 1, 0)


def test_intake_keeps_the_payload_byte_for_byte_and_gives_it_an_id(driver, backend_env):
    text = '{"job":"App\\\\Jobs\\\\Record","data":{"ü":"✓"},"extra":[1]}'
    redis.Redis.from_url(backend_env["REDIS_URL"]).lpush("default", text.encode())
    (r,) = driver.reserve(["default"], OWNER, 30, 5)
    assert (r.payload, r.attempts) == (text, 1)
    assert driver.get(r.id).state == JobState.RESERVED


def test_a_payload_that_is_not_json_is_taken_in_as_ready(driver, backend_env):
    # the worker then fails it at once with InvalidPayload; it is never dropped here.
    # (a queue fed only by PHP is known to `status` once a worker has served it)
    assert driver.reserve(["default"], OWNER, 30, 5) == []
    redis.Redis.from_url(backend_env["REDIS_URL"]).lpush("default", "not json")
    assert stats_of(driver) == (1, 0, 0, 0)
    (r,) = driver.reserve(["default"], OWNER, 30, 5)
    assert r.payload == "not json"


def test_intake_ids_do_not_collide_with_pushed_ids(driver, other_driver, backend_env):
    raw = redis.Redis.from_url(backend_env["REDIS_URL"])
    raw.lpush("default", *[php_payload(n) for n in range(5)])
    pushed = [other_driver.push_many("default", [_new()])[0] for _ in range(3)]
    taken = driver.reserve(["default"], OWNER, 30, 20)
    assert len(taken) == 8
    assert len({r.id for r in taken}) == 8
    assert set(pushed) <= {r.id for r in taken}


def _new():
    from chappyd.drivers.base import NewJob

    return NewJob(php_payload(0), time.time())


def test_a_worker_serving_the_queue_picks_up_a_php_push(backend_env, tmp_path):
    env = {**backend_env, "CHAPPY_QUEUES": "emails"}
    record = tmp_path / "done"
    worker = start_worker(env, record)
    try:
        redis.Redis.from_url(env["REDIS_URL"]).lpush("emails", php_payload(7))
        wait_until(lambda: len(recorded(str(record))) == 1, 15.0, "the PHP job to run")
    finally:
        stop_workers([worker])
