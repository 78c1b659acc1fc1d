"""Pushing: ids, order, delays, payload kept byte for byte."""

from __future__ import annotations

import json
import time

from chappyd.drivers.base import JobState, NewJob

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
