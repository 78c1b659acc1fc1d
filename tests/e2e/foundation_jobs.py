"""Jobs the foundation e2e tests run; each records its run in $CHAPPY_TEST_LOG."""

from __future__ import annotations

import time

from chappyd import Job
from tests.runlog import append_run


def record(job: Job, **extra: object) -> None:
    append_run(id=job.job_id, attempt=job.attempts, t=time.time(), job=type(job).name, **extra)


class Record(Job):
    def handle(self) -> None:
        record(self, data=self.data)


class FailTwice(Job):
    """Fails its first two attempts, then succeeds."""

    def backoff(self) -> list[int]:
        return [1, 2]

    def handle(self) -> None:
        record(self)
        if self.attempts <= 2:
            raise RuntimeError(f"planned failure {self.attempts}")


class AlwaysFails(Job):
    tries = 2

    def backoff(self) -> int:
        return 0

    def handle(self) -> None:
        record(self)
        raise ValueError("always fails")
