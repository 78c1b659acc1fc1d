"""Jobs the end-to-end tests run in real `chappyd` children.

Each appends one line per event to the file named by $E2E_RECORD with a single
O_APPEND write (atomic across processes): `<event> <job id> <pid> <attempt> <name>`.
"""

from __future__ import annotations

import os
import signal
import time

from chappyd.jobs import Job
from tests.runlog import append_line


def record(event: str, job: Job) -> None:
    append_line(os.environ["E2E_RECORD"],
                f"{event} {job.job_id} {os.getpid()} {job.attempts} {job.data.get('name', '-')}")


class Record(Job):
    """Records that it ran, after sleeping `data["sleep"]` seconds (default 0)."""

    tries = 3

    def handle(self) -> None:
        record("start", self)
        time.sleep(float(self.data.get("sleep", 0)))
        record("done", self)


class KillSelf(Job):
    """SIGKILLs its own child process on the first attempt, succeeds afterwards."""

    tries = 3

    def backoff(self) -> int:
        return 0

    def handle(self) -> None:
        record("start", self)
        if self.attempts == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        record("done", self)


class Stubborn(Job):
    """Ignores the worker's SIGALRM time limit, so only the master can stop it."""

    tries = 2
    timeout = 1

    def backoff(self) -> int:
        return 0

    def handle(self) -> None:
        record("start", self)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        time.sleep(60)
        record("done", self)


class SleepOnce(Job):
    """Sleeps `data["sleep"]` s the first time it ever runs (a marker file remembers),
    then runs fast: a job a stop interrupts, re-run later."""

    tries = 3

    def handle(self) -> None:
        marker = f"{os.environ['E2E_RECORD']}.{self.job_id}.slept"
        record("start", self)
        if not os.path.exists(marker):
            open(marker, "w").close()
            time.sleep(float(self.data.get("sleep", 30)))
        record("done", self)


class KillAlways(Job):
    """SIGKILLs its child every time: a poison job that must end failed."""

    tries = 2

    def backoff(self) -> int:
        return 0

    def handle(self) -> None:
        record("start", self)
        os.kill(os.getpid(), signal.SIGKILL)


class Slow(Job):
    """Sleeps past its timeout; the worker's own SIGALRM stops it."""

    tries = 1
    timeout = 1

    def handle(self) -> None:
        record("start", self)
        time.sleep(30)


class Env(Job):
    """Records the value of the environment variable `data["var"]` as its name."""

    def handle(self) -> None:
        self.data["name"] = os.environ.get(str(self.data["var"]), "unset")
        record("done", self)


class Backoff(Job):
    """Never run: its backoff is what the master's settlement reads."""

    def backoff(self) -> list[int]:
        return [7, 60]

    def handle(self) -> None:
        record("done", self)
