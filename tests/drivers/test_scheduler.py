"""The master's Scheduler over a real backend, with `now` given: which ticks it enqueues
on a first run, on time, after downtime by each catch-up policy, and when behind."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from chappyd.drivers.base import Driver
from chappyd.jobs import Job
from chappyd.scheduler import ScheduledJob, Scheduler, run_payload
from chappyd.schedules import Schedule

from .helpers import stats_of


class Tick(Job):
    queue = "ticks"
    tries = 5


def every_2s(catchup: str = "latest", data: dict | None = None) -> ScheduledJob:
    return ScheduledJob(Tick, Schedule.parse("* * * * * */2", "UTC"), catchup, data or {})


#: an even second an hour ago: every tick of the tests is in the past, so ready at once
BASE = datetime.fromtimestamp(int(datetime.now(UTC).timestamp()) // 2 * 2 - 3600, UTC)


def at(seconds: float) -> datetime:
    return BASE + timedelta(seconds=seconds)


def drain(driver: Driver) -> list[int]:
    """Run (reserve and ack) every waiting tick job; their ticks as seconds after BASE."""
    ticks = []
    while taken := driver.reserve(["ticks"], "h:1:2", 30, 10):
        for job in taken:
            ticks.append(json.loads(job.payload)["scheduled_for"] - int(BASE.timestamp()))
            assert driver.ack(job)
    return sorted(ticks)


def test_a_new_schedule_starts_at_its_next_tick(driver):
    scheduler = Scheduler([every_2s()], max_attempts=3)
    assert scheduler.run_due(driver, at(0.5)) == at(2)
    assert drain(driver) == []
    assert scheduler.run_due(driver, at(2.1)) == at(4)
    assert drain(driver) == [2]


def test_a_tick_job_carries_the_tick_and_the_schedule_data(driver):
    scheduler = Scheduler([every_2s(data={"kind": "daily"})], max_attempts=3)
    scheduler.run_due(driver, at(0))
    scheduler.run_due(driver, at(2))
    (job,) = driver.reserve(["ticks"], "h:1:2", 30, 10)
    payload = json.loads(job.payload)
    tick_s = int(at(2).timestamp())
    assert payload == {**payload, "job": Tick.name, "data": {"kind": "daily"},
                       "available_at": tick_s, "scheduled_for": tick_s, "max_attempts": 5}
    assert driver.get(job.id).available_at == tick_s


def test_two_masters_enqueue_each_tick_once(driver, other_driver):
    masters = [(Scheduler([every_2s()], 3), d) for d in (driver, other_driver)]
    for seconds in (0, 2, 4, 6):
        for scheduler, backend in masters:
            scheduler.run_due(backend, at(seconds + 0.1))
        assert drain(driver) == ([seconds] if seconds else [])
    assert driver.last_ticks({Tick.name: "ticks"}) == {Tick.name: int(at(6).timestamp())}


def test_a_tick_is_skipped_while_the_previous_run_waits(driver):
    scheduler = Scheduler([every_2s()], 3)
    for seconds in (0, 2, 4, 6):
        scheduler.run_due(driver, at(seconds))
    assert stats_of(driver, "ticks") == (1, 0, 0, 0)
    assert drain(driver) == [2]
    scheduler.run_due(driver, at(8))
    assert drain(driver) == [8]


def stopped_at_4_restarted_at_13(driver: Driver, catchup: str) -> list[int]:
    first = Scheduler([every_2s(catchup)], 3)
    for seconds in (0, 2, 4):
        first.run_due(driver, at(seconds))
        drain(driver)
    second = Scheduler([every_2s(catchup)], 3)  # a new master: ticks 6..12 were missed
    assert second.run_due(driver, at(13)) == at(14)
    return drain(driver)


@pytest.mark.parametrize(("catchup", "ran"), [("latest", [12]), ("none", []),
                                              ("all", [6, 8, 10, 12])])
def test_a_restarted_master_catches_up_by_the_policy(driver, catchup, ran):
    assert stopped_at_4_restarted_at_13(driver, catchup) == ran


def test_catchup_all_takes_the_most_recent_100_ticks(driver):
    first = Scheduler([every_2s("all")], 3)
    first.run_due(driver, at(0))
    first.run_due(driver, at(2))
    drain(driver)
    Scheduler([every_2s("all")], 3).run_due(driver, at(1000))
    assert drain(driver) == list(range(802, 1001, 2))


def test_a_master_that_falls_behind_takes_the_newest_due_tick(driver):
    scheduler = Scheduler([every_2s("none")], 3)
    scheduler.run_due(driver, at(0))
    assert scheduler.run_due(driver, at(9)) == at(10)  # 2, 4, 6 and 8 are all due
    assert drain(driver) == [8]


def test_a_schedule_test_run_is_not_a_tick(driver):
    new_job = run_payload(every_2s(), int(at(3).timestamp()), 3)
    driver.push_many("ticks", [new_job])
    assert driver.last_ticks({Tick.name: "ticks"}) == {}
    assert json.loads(new_job.payload)["scheduled_for"] == int(at(3).timestamp())
