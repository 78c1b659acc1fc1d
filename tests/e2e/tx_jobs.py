"""A job for the transactional push tests: it records when it started, so that a test
can measure the time from a commit to the job's start."""

from __future__ import annotations

import os
import time

from chappyd.jobs import Job
from tests.runlog import append_line


class Stamped(Job):
    """Appends `start <id> <pid> <attempt> <unix time>` to $E2E_RECORD (E2E.events reads
    the time as the event's name)."""

    def handle(self) -> None:
        append_line(os.environ["E2E_RECORD"],
                    f"start {self.job_id} {os.getpid()} {self.attempts} {time.time():.6f}")
