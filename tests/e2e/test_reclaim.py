"""Settling a dead child's jobs, against the real backend (the master's half of §3)."""

from __future__ import annotations

import time

from chappyd.daemon.reclaim import NO_ATTEMPT, Settle, Settlement, settle
from chappyd.drivers.base import Driver, JobState
from chappyd.jobs import Registry
from tests.conftest import settings_for
from tests.drivers.helpers import OWNER, push

ERROR = "WorkerDied: worker 1 (pid 101) running tests.e2e.jobs.Backoff was killed by signal 9"


def _registry() -> Registry:
    registry = Registry()
    registry.load(["tests.e2e.jobs"])
    return registry


def test_the_running_job_gets_its_backoff_and_the_unstarted_go_back_refunded(
        driver: Driver, backend_env: dict[str, str]) -> None:
    running = push(driver, job="tests.e2e.jobs.Backoff", max_attempts=3)
    unstarted = push(driver, job="tests.e2e.jobs.Backoff", max_attempts=3)
    held = driver.reserve(("default",), OWNER, 30.0, 2)
    assert [r.id for r in held] == [running, unstarted]
    before = time.time()
    item = Settlement(OWNER, Settle.FAILED, running, ERROR, 0.5)
    assert settle(driver, _registry(), settings_for(backend_env), item) == "retried"
    record = driver.get(running)
    assert record is not None and record.state is JobState.DELAYED
    assert record.attempts == 1 and record.exception == ERROR
    assert record.available_at is not None
    assert before + 7 <= record.available_at <= time.time() + 7  # Backoff: [7, 60]
    record = driver.get(unstarted)
    assert record is not None and record.state is JobState.READY and record.attempts == 0


def test_the_last_attempt_ends_failed(driver: Driver, backend_env: dict[str, str]) -> None:
    job_id = push(driver, job="tests.e2e.jobs.Backoff", max_attempts=1)
    driver.reserve(("default",), OWNER, 30.0, 1)
    item = Settlement(OWNER, Settle.FAILED, job_id, ERROR)
    assert settle(driver, _registry(), settings_for(backend_env), item) == "failed"
    record = driver.get(job_id)
    assert record is not None and record.state is JobState.FAILED
    assert record.exception == ERROR


def test_a_stop_refunds_everything(driver: Driver, backend_env: dict[str, str]) -> None:
    job_id = push(driver, job="tests.e2e.jobs.Backoff")
    driver.reserve(("default",), OWNER, 30.0, 1)
    assert settle(driver, _registry(), settings_for(backend_env),
                  Settlement(OWNER, Settle.REFUND)) == NO_ATTEMPT
    record = driver.get(job_id)
    assert record is not None and record.state is JobState.READY and record.attempts == 0


def test_a_stop_gives_the_running_job_back_released(driver: Driver,
                                                   backend_env: dict[str, str]) -> None:
    job_id = push(driver, job="tests.e2e.jobs.Backoff")
    driver.reserve(("default",), OWNER, 30.0, 1)
    item = Settlement(OWNER, Settle.REFUND, job_id, job_name="tests.e2e.jobs.Backoff",
                      queue="default")
    assert settle(driver, _registry(), settings_for(backend_env), item) == "released"
    record = driver.get(job_id)
    assert record is not None and record.state is JobState.READY and record.attempts == 0


def test_a_started_job_no_longer_held_still_ends_an_attempt(
        driver: Driver, backend_env: dict[str, str]) -> None:
    # the child acked it just before it died, its report lost: --max counts it, the
    # metrics do not (stale is not an outcome they count)
    job_id = push(driver, job="tests.e2e.jobs.Backoff")
    [reservation] = driver.reserve(("default",), OWNER, 30.0, 1)
    assert driver.ack(reservation)
    item = Settlement(OWNER, Settle.FAILED, job_id, ERROR)
    assert settle(driver, _registry(), settings_for(backend_env), item) == "stale"
    assert settle(driver, _registry(), settings_for(backend_env),
                  Settlement(OWNER, Settle.FAILED)) == NO_ATTEMPT
