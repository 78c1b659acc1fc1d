"""Leases: renewal by owner, takeover of expired ones, the dead child's jobs."""

from __future__ import annotations

import time

from chappyd.drivers.base import JobState

from .helpers import OTHER_OWNER, OWNER, push, reserve_one


def test_expired_lease_returns_the_job_with_its_attempt_kept(driver):
    job_id = push(driver)
    first = reserve_one(driver, lease_s=0.3)
    assert driver.expire_leases() == 0
    time.sleep(0.5)
    assert driver.expire_leases() == 1
    record = driver.get(job_id)
    assert (record.state, record.attempts) == (JobState.READY, 1)
    assert record.exception.startswith("LeaseExpired")
    second = reserve_one(driver, owner=OTHER_OWNER)
    assert (second.id, second.attempts) == (job_id, 2)
    # the first holder's late report is refused: the new holder decides
    assert driver.ack(first) is False
    assert driver.fail(first, "late") is False
    assert driver.get(job_id).state == JobState.RESERVED
    assert driver.ack(second) is True


def test_extend_leases_keeps_a_long_job_from_expiring(driver):
    job_id = push(driver)
    reserve_one(driver, owner=OWNER, lease_s=0.4)
    for _ in range(3):
        time.sleep(0.2)
        assert driver.extend_leases([OWNER], 0.4) == 1
        assert driver.expire_leases() == 0
    assert driver.get(job_id).state == JobState.RESERVED


def test_extend_leases_touches_only_the_named_owners(driver):
    push(driver)
    other = push(driver)
    reserve_one(driver, owner=OWNER, lease_s=0.3)
    reserve_one(driver, owner=OTHER_OWNER, lease_s=0.3)
    time.sleep(0.15)
    assert driver.extend_leases([OWNER], 30) == 1
    time.sleep(0.3)
    assert driver.expire_leases() == 1
    assert driver.get(other).state == JobState.READY


def test_held_by_lists_an_owners_jobs(driver):
    ids = [push(driver) for _ in range(3)]
    mine = driver.reserve(["default"], OWNER, 30, 2)
    theirs = reserve_one(driver, owner=OTHER_OWNER)
    held = driver.held_by(OWNER)
    assert sorted(r.id for r in held) == sorted(ids[:2])
    assert {r.token for r in held} == {r.token for r in mine}
    assert [r.id for r in driver.held_by(OTHER_OWNER)] == [theirs.id]
    assert driver.held_by("nobody:1:1") == []


def test_release_owner_gives_back_everything_refunded(driver):
    ids = [push(driver) for _ in range(3)]
    driver.reserve(["default"], OWNER, 30, 2)
    reserve_one(driver, owner=OTHER_OWNER)
    assert driver.release_owner(OWNER) == 2
    assert [driver.get(i).state for i in ids] == [JobState.READY, JobState.READY,
                                                  JobState.RESERVED]
    assert [driver.get(i).attempts for i in ids[:2]] == [0, 0]
    assert driver.held_by(OWNER) == []
