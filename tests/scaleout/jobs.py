"""Jobs of the scale-out tests: each appends one line per event to $E2E_RECORD (as
tests/e2e/jobs.py does), `<event> <job id> <pid> <attempt> <name>`, and Stamp writes
the wall-clock time it started instead of its name."""

from __future__ import annotations

import os
import time

from chappyd.jobs import Job
from tests.e2e.jobs import record
from tests.runlog import append_line


class Stamp(Job):
    """Records the time.time() at which a child started it."""

    tries = 1

    def handle(self) -> None:
        append_line(os.environ["E2E_RECORD"],
                    f"start {self.job_id} {os.getpid()} {self.attempts} {time.time():.6f}")


class Slow(Job):
    """Records its start, sleeps `data["sleep"]` s, records its end."""

    tries = 5

    def backoff(self) -> int:
        return 0

    def handle(self) -> None:
        record("start", self)
        time.sleep(float(self.data.get("sleep", 0)))
        record("done", self)
