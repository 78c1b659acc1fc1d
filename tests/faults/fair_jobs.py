"""A job for the fair-dispatch kill storm: it records every start and finish (id,
attempt, pid, time) to $CHAPPY_TEST_LOG, so that each charged attempt can be matched
with a run that really began."""

from __future__ import annotations

import time

from chappyd import Job
from tests.runlog import append_run


class Timed(Job):
    """Records its start, sleeps `data["sleep_s"]` (default 0), records its end."""

    tries = 50  # the storm must never exhaust a job's attempts

    def backoff(self) -> int:
        return 0

    def handle(self) -> None:
        sleep_s = float(self.data.get("sleep_s", 0))
        append_run(id=self.job_id, attempt=self.attempts, phase="start", t=time.time(),
                   long=sleep_s > 0)
        time.sleep(sleep_s)
        append_run(id=self.job_id, attempt=self.attempts, phase="done", t=time.time())
