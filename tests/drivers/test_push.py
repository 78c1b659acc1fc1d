"""Pushing: ids, order, delays, payload kept byte for byte."""

from __future__ import annotations

import json
import threading
import time

import pytest

from chappyd.drivers.base import JobState, NewJob
from chappyd.manager import QueueManager

from .helpers import payload, push, reserve_one, stats_of


def test_push_many_returns_distinct_string_ids_in_order(driver):
    ids = driver.push_many("default", [NewJob(payload(n=i), time.time()) for i in range(5)])
    assert len(ids) == 5 and len(set(ids)) == 5
    assert all(isinstance(i, str) for i in ids)
    for n, job_id in enumerate(ids):
        assert json.loads(driver.get(job_id).payload)["n"] == n


def test_pushed_job_is_ready_with_zero_attempts(driver):
    job_id = push(driver)
    record = driver.get(job_id)
    assert record.state == JobState.READY
    assert record.attempts == 0
    assert record.queue == "default"
    assert record.failed_at is None and record.reserved_at is None
    assert stats_of(driver) == (1, 0, 0, 0)


def test_payload_text_survives_unchanged(driver):
    text = '{"job":"x.Y","data":{"ü":"✓","n":1.5},"unknown_key":[1,2]}'
    job_id = driver.push_many("default", [NewJob(text, time.time())])[0]
    assert driver.get(job_id).payload == text
    assert reserve_one(driver).payload == text


def test_delayed_job_is_not_reservable_until_due(driver):
    push(driver, delay_s=0.6)
    assert stats_of(driver) == (0, 1, 0, 0)
    assert driver.reserve(["default"], "h:1:2", 30, 1) == []
    time.sleep(0.7)
    assert reserve_one(driver).attempts == 1


def test_available_at_in_the_past_is_ready(driver):
    job_id = push(driver, delay_s=-3600)
    assert driver.get(job_id).state == JobState.READY
    assert reserve_one(driver).id == job_id


def test_unknown_id_is_none(driver):
    assert driver.get("999999999") is None
    assert driver.get("not-an-id") is None


def test_push_many_of_a_thousand(driver):
    ids = driver.push_many("bulk", [NewJob(payload(), time.time())] * 1000)
    assert len(set(ids)) == 1000
    assert stats_of(driver, "bulk") == (1000, 0, 0, 0)


def test_every_push_records_when_it_was_made_and_when_it_is_due(driver):
    # the first push of a queue in a process registers it; later ones take the
    # one-by-one path (a lighter script on Redis): both must store the same record
    before = time.time()
    due = before - 30
    ids = [driver.push_many("default", [NewJob(payload(n=i), due)])[0] for i in range(3)]
    after = time.time()
    for job_id in ids:
        record = driver.get(job_id)
        assert record.state == JobState.READY and record.attempts == 0
        assert record.available_at == pytest.approx(due, abs=0.001)
        assert before - 1 <= record.created_at <= after + 1
    assert [json.loads(reserve_one(driver).payload)["n"] for _ in ids] == [0, 1, 2]


def test_a_manager_shared_by_threads_pushes_every_job_exactly_once(settings, driver):
    # a threaded web server pushes from every request thread through one manager
    manager = QueueManager(settings=settings)
    threads, per_thread = 8, 60
    pushed: list[str] = []
    errors: list[BaseException] = []

    def producer(t: int) -> None:
        try:
            for n in range(per_thread):
                payload = {"job": "tests.Noop", "data": {"t": t, "n": n}}
                if n % 10 == 9:
                    pushed.extend(manager.push_many("default", [payload]))
                else:
                    pushed.append(manager.push("default", payload))
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=producer, args=(t,), daemon=True)
               for t in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in workers), "a producer thread hung"
    manager.close()
    assert errors == []
    total = threads * per_thread
    assert len(pushed) == total and len(set(pushed)) == total
    assert stats_of(driver) == (total, 0, 0, 0)
    seen = sorted((d["t"], d["n"]) for d in (
        json.loads(r.payload)["data"] for r in driver.reserve(["default"], "h:1:2", 30, total)))
    assert seen == [(t, n) for t in range(threads) for n in range(per_thread)]
