"""Building rows in the state under test, through the driver's own verbs."""

from __future__ import annotations

import json
import time
from typing import Any

from chappyd.drivers.base import Driver, NewJob, Reservation

OWNER = "testhost:100:101"
OTHER_OWNER = "testhost:100:102"


def payload(job: str = "tests.Noop", **extra: Any) -> str:
    return json.dumps({"job": job, "data": {}, "max_attempts": 3, **extra})


def push(driver: Driver, queue: str = "default", delay_s: float = 0.0, **extra: Any) -> str:
    return driver.push_many(queue, [NewJob(payload(**extra), time.time() + delay_s)])[0]


def reserve_one(driver: Driver, queues: tuple[str, ...] = ("default",), owner: str = OWNER,
                lease_s: float = 30.0) -> Reservation:
    taken = driver.reserve(queues, owner, lease_s, 1)
    assert len(taken) == 1, f"expected one job to reserve, got {taken}"
    return taken[0]


def stats_of(driver: Driver, queue: str = "default") -> tuple[int, int, int, int]:
    """(ready, delayed, reserved, failed) of `queue`."""
    for s in driver.stats():
        if s.queue == queue:
            return (s.ready, s.delayed, s.reserved, s.failed)
    return (0, 0, 0, 0)
