"""Periodic jobs the end-to-end tests run: each records its tick and when it started.

One line per run in $CHAPPY_TEST_LOG: {"pid", "job", "job_id", "tick", "started"}.
A master serves one of the queues below, so only that class's schedule runs there.
"""

from __future__ import annotations

import time

from chappyd.jobs import Job
from tests.runlog import append_run

EVERY_2_S = "* * * * * */2"


class _Recorded(Job):
    tries = 3

    def handle(self) -> None:
        started = time.time()
        assert self.scheduled_for is not None
        append_run(job=type(self).__name__, job_id=self.job_id, started=started,
                   tick=int(self.scheduled_for.timestamp()), data=self.data)


class Every2s(_Recorded):
    queue = "ticks"
    schedule = EVERY_2_S
    schedule_data = {"report": "heartbeat"}


class CatchLatest(_Recorded):
    queue = "catch-latest"
    schedule = EVERY_2_S
    catchup = "latest"


class CatchNone(_Recorded):
    queue = "catch-none"
    schedule = EVERY_2_S
    catchup = "none"


class CatchAll(_Recorded):
    queue = "catch-all"
    schedule = EVERY_2_S
    catchup = "all"


class Nightly(Job):
    """For the CLI: a wall-clock schedule in a named zone, on its own queue."""

    queue = "reports"
    schedule = "30 2 * * *"
    timezone = "Europe/Berlin"

    def handle(self) -> None:
        append_run(job="Nightly", job_id=self.job_id, started=time.time(),
                   tick=None if self.scheduled_for is None
                   else int(self.scheduled_for.timestamp()))
