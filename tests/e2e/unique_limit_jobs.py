"""Jobs of the unique-job and limit tests, run in real `chappyd` children.

They record like tests/e2e/jobs.py (`<event> <job id> <pid> <attempt> <name>` lines
in $E2E_RECORD), plus the time: `<event> <id> <pid> <attempt> <name> <unix time>`.
"""

from __future__ import annotations

import os
import signal
import time

from chappyd.jobs import Job
from tests.runlog import append_line


def record(event: str, job: Job) -> None:
    append_line(os.environ["E2E_RECORD"], f"{event} {job.job_id} {os.getpid()} "
                f"{job.attempts} {job.data.get('name', '-')} {time.time():.6f}")


class Sleeper(Job):
    """Records its start and end around a sleep of `data["sleep"]` seconds."""

    tries = 3

    def handle(self) -> None:
        record("start", self)
        time.sleep(float(self.data.get("sleep", 0)))
        record("done", self)


class UniqueUntilDone(Sleeper):
    unique = ("account",)
    unique_until = "done"


class UniqueUntilStarted(Sleeper):
    unique = ("account",)
    unique_until = "started"


class UniqueOneTry(Sleeper):
    """Unique, one attempt: a child killed under it fails it for good."""

    unique = ("account",)
    tries = 1


class UniqueKillsItself(Job):
    """Unique and SIGKILLs its own child on every attempt: ends failed."""

    unique = True
    tries = 2

    def backoff(self) -> int:
        return 0

    def handle(self) -> None:
        record("start", self)
        os.kill(os.getpid(), signal.SIGKILL)


class AtMostTwo(Sleeper):
    """At most two running at once, on every host together."""

    concurrency = 2


class FivePerSecond(Job):
    """At most five starts a second; records when the backend reserved it."""

    rate = "5/s"

    def handle(self) -> None:
        assert self.job_id is not None
        record = _driver().get(self.job_id)
        assert record is not None and record.reserved_at is not None
        append_line(os.environ["E2E_RECORD"],
                    f"reserved {self.job_id} {os.getpid()} {self.attempts} - "
                    f"{record.reserved_at:.6f}")


_own_driver = None


def _driver():  # type: ignore[no-untyped-def]
    """This child's own connection (opened after the fork, once)."""
    global _own_driver
    if _own_driver is None:
        from chappyd.drivers import open_driver
        from chappyd.manager import configured_settings

        _own_driver = open_driver(configured_settings())
    return _own_driver
