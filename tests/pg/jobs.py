"""Jobs of the PostgreSQL tests: each run appends its job id to $CHAPPY_TEST_LOG."""

from __future__ import annotations

import os

from chappyd import Job
from tests.runlog import append_line


class Record(Job):
    tries = 10

    def handle(self) -> None:
        append_line(os.environ["CHAPPY_TEST_LOG"], self.job_id)
