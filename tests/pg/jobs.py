"""Jobs of the PostgreSQL tests: each run appends its job id to $CHAPPY_TEST_LOG."""

from __future__ import annotations

import os

from chappyd import Job


class Record(Job):
    tries = 10

    def handle(self) -> None:
        fd = os.open(os.environ["CHAPPY_TEST_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(fd, f"{self.job_id}\n".encode())
        finally:
            os.close(fd)
