"""Periodic ticks: one enqueue per (job name, tick), no pile-up, the last tick kept."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import time
from pathlib import Path

from chappyd.drivers import open_driver
from chappyd.drivers.base import JobState, NewJob, TickOutcome

from ..conftest import settings_for
from .helpers import payload, reserve_one, stats_of

JOB = "tests.Nightly"


def run_of(tick: int, queue_delay_s: float = 0.0) -> NewJob:
    return NewJob(payload(JOB, scheduled_for=tick), tick + queue_delay_s)


def test_a_tick_is_enqueued_with_its_payload_and_time(driver):
    tick = int(time.time())
    result = driver.enqueue_tick("default", JOB, tick, run_of(tick))
    assert result.outcome is TickOutcome.ENQUEUED
    record = driver.get(result.job_id)
    assert record.state is JobState.READY
    assert record.available_at == tick
    assert json.loads(record.payload)["scheduled_for"] == tick
    assert stats_of(driver) == (1, 0, 0, 0)


def test_a_second_enqueue_of_the_same_tick_is_refused(driver, other_driver):
    tick = int(time.time())
    first = driver.enqueue_tick("default", JOB, tick, run_of(tick))
    job = reserve_one(driver)  # even once the first run left the waiting states
    again = other_driver.enqueue_tick("default", JOB, tick, run_of(tick))
    assert first.outcome is TickOutcome.ENQUEUED and job.id == first.job_id
    assert again.outcome is TickOutcome.DUPLICATE and again.job_id is None
    assert stats_of(driver) == (0, 0, 1, 0)


def test_the_same_tick_of_another_job_is_its_own(driver):
    tick = int(time.time())
    a = driver.enqueue_tick("default", JOB, tick, run_of(tick))
    b = driver.enqueue_tick("default", "tests.Other", tick, run_of(tick))
    assert (a.outcome, b.outcome) == (TickOutcome.ENQUEUED, TickOutcome.ENQUEUED)
    assert a.job_id != b.job_id


def test_a_tick_waits_while_the_previous_run_is_waiting(driver):
    tick = int(time.time()) + 60  # delayed: waiting all along
    first = driver.enqueue_tick("default", JOB, tick, run_of(tick))
    second = driver.enqueue_tick("default", JOB, tick + 60, run_of(tick + 60))
    assert first.outcome is TickOutcome.ENQUEUED
    assert second.outcome is TickOutcome.SKIPPED and second.job_id is None
    # a skipped tick is taken too: another master does not enqueue it after all
    again = driver.enqueue_tick("default", JOB, tick + 60, run_of(tick + 60))
    assert again.outcome is TickOutcome.DUPLICATE
    assert stats_of(driver) == (0, 1, 0, 0)


def test_a_tick_is_enqueued_once_the_previous_run_started_or_ended(driver):
    tick = int(time.time()) - 10  # every run ready at once
    driver.enqueue_tick("default", JOB, tick, run_of(tick))
    running = reserve_one(driver)
    second = driver.enqueue_tick("default", JOB, tick + 1, run_of(tick + 1))
    assert second.outcome is TickOutcome.ENQUEUED
    assert driver.ack(running)
    third_tick = tick + 2
    reserve_one(driver)
    third = driver.enqueue_tick("default", JOB, third_tick, run_of(third_tick))
    assert third.outcome is TickOutcome.ENQUEUED


def test_without_the_pile_up_check_every_tick_is_enqueued(driver):
    tick = int(time.time()) - 10
    results = [driver.enqueue_tick("default", JOB, t, run_of(t), skip_if_waiting=False)
               for t in (tick, tick + 1, tick + 2)]
    assert [r.outcome for r in results] == [TickOutcome.ENQUEUED] * 3
    assert stats_of(driver) == (3, 0, 0, 0)


def test_the_last_enqueued_tick_is_remembered_per_job(driver, other_driver):
    tick = int(time.time())
    assert driver.last_ticks({JOB: "default"}) == {}
    driver.enqueue_tick("default", JOB, tick, run_of(tick), skip_if_waiting=False)
    driver.enqueue_tick("default", JOB, tick + 5, run_of(tick + 5), skip_if_waiting=False)
    driver.enqueue_tick("default", JOB, tick + 3, run_of(tick + 3), skip_if_waiting=False)
    driver.enqueue_tick("emails", "tests.Other", tick, run_of(tick))
    assert other_driver.last_ticks({JOB: "default", "tests.Other": "emails",
                                    "tests.Never": "default"}) == {
        JOB: tick + 5, "tests.Other": tick}


def test_a_skipped_tick_does_not_move_the_last_tick(driver):
    tick = int(time.time()) + 60
    driver.enqueue_tick("default", JOB, tick, run_of(tick))
    driver.enqueue_tick("default", JOB, tick + 60, run_of(tick + 60))
    assert driver.last_ticks({JOB: "default"}) == {JOB: tick}


def test_last_ticks_creates_nothing_where_there_is_no_schema(backend, backend_env, tmp_path):
    env = dict(backend_env)
    if backend == "sqlite":
        env["DATABASE_URL"] = f"sqlite:///{tmp_path}/absent/queue.sqlite3"
    settings = dataclasses.replace(settings_for(env), auto_migrate=False)
    driver = open_driver(settings)
    try:
        assert driver.last_ticks({JOB: "default"}) == {}
    finally:
        driver.close()
    if backend == "sqlite":
        assert not (tmp_path / "absent").exists()


def _enqueue_racing(env: dict[str, str], tick: int, out: str, go) -> None:
    driver = open_driver(settings_for(env))
    go.wait(10)
    result = driver.enqueue_tick("default", JOB, tick, run_of(tick))
    Path(out).write_text(f"{result.outcome} {result.job_id}")
    driver.close()


def test_racing_processes_enqueue_a_tick_once(driver, backend_env, tmp_path):
    tick = int(time.time())
    ctx = multiprocessing.get_context("fork")
    go = ctx.Event()
    outs = [str(tmp_path / f"p{i}") for i in range(6)]
    procs = [ctx.Process(target=_enqueue_racing, args=(backend_env, tick, out, go))
             for out in outs]
    for proc in procs:
        proc.start()
    go.set()  # all at once, so that they really race
    for proc in procs:
        proc.join(30)
        assert proc.exitcode == 0
    outcomes = sorted(Path(out).read_text().split()[0] for out in outs)
    assert outcomes == ["duplicate"] * 5 + ["enqueued"]
    assert stats_of(driver) == (1, 0, 0, 0)
