"""Jobs the Redis tests run in real worker processes."""

from __future__ import annotations

import os
import time

from chappyd import Job
from tests.runlog import append_line


class Record(Job):
    """Appends its id to $CHAPPY_TEST_RECORD (one O_APPEND write: lines never mix)."""

    name = "App\\Jobs\\Record"

    def handle(self) -> None:
        append_line(os.environ["CHAPPY_TEST_RECORD"], f"{self.job_id} {self.data.get('n', '')}")
        time.sleep(float(self.data.get("sleep_s", 0)))


def recorded(path: str) -> list[str]:
    """The job ids recorded so far, one per run (duplicates kept)."""
    try:
        with open(path) as handle:
            return [line.split()[0] for line in handle if line.strip()]
    except FileNotFoundError:
        return []
