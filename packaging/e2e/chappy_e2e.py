"""Jobs that packaging/test-deb.sh runs inside the booted container.

Installed there as a plain module on Debian's system path
(/usr/local/lib/python3.11/dist-packages), which the hardened unit can read
(ProtectSystem=strict leaves /usr readable) without any PYTHONPATH. Each job appends
one JSON line per event to /var/lib/chappyd/e2e/events.jsonl: StateDirectory= is the
one place the unit may write, and the test reads the file from the host side.
"""

from __future__ import annotations

import json
import os
import time

from chappyd import Job

EVENTS = "/var/lib/chappyd/e2e/events.jsonl"


def record(job: Job, event: str) -> None:
    os.makedirs(os.path.dirname(EVENTS), exist_ok=True)
    line = json.dumps({"event": event, "id": job.job_id, "attempt": job.attempts,
                       "pid": os.getpid(), "ppid": os.getppid(), "t": time.time(),
                       **job.data}) + "\n"
    # O_APPEND writes this small are atomic: concurrent workers never interleave lines
    fd = os.open(EVENTS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


class Record(Job):
    """Records that it ran; data {"n": i} numbers the pushes."""

    queue = "emails"

    def handle(self) -> None:
        record(self, "handled")


class Slow(Job):
    """Runs data["seconds"]; what a graceful stop must wait for, or a killed worker held."""

    queue = "emails"
    timeout = 120

    def backoff(self) -> int:
        return 1  # a re-run after a killed worker comes quickly

    def handle(self) -> None:
        record(self, "started")
        time.sleep(float(self.data["seconds"]))
        record(self, "finished")
