"""Jobs for the fault suite. Every run appends one JSON line (id, attempt, pid, phase)
to $CHAPPY_TEST_LOG with O_APPEND, so that runs are counted even across SIGKILLs."""

from __future__ import annotations

import ctypes
import os
import signal
import time

from chappyd import Job
from tests.runlog import append_run


def record(job: Job, phase: str = "done") -> None:
    append_run(id=job.job_id, attempt=job.attempts, phase=phase, t=time.time())


class Count(Job):
    """Records its run; optionally sleeps `data["sleep_s"]` first."""

    tries = 50  # chaos kills must never exhaust a job's attempts

    def backoff(self) -> int:
        return 0

    def handle(self) -> None:
        if self.data.get("sleep_s"):
            record(self, "start")
            time.sleep(self.data["sleep_s"])
        record(self)


class Segfault(Job):
    tries = 2

    def backoff(self) -> int:
        return 0

    def handle(self) -> None:
        record(self, "start")
        ctypes.string_at(0)


class KillsItself(Job):
    """SIGKILLs its own child, as the OOM killer would."""

    tries = 2

    def backoff(self) -> int:
        return 0

    def handle(self) -> None:
        record(self, "start")
        os.kill(os.getpid(), signal.SIGKILL)


class ExitAbruptly(Job):
    tries = 2

    def backoff(self) -> int:
        return 0

    def handle(self) -> None:
        record(self, "start")
        os._exit(3)


class EatMemory(Job):
    """Allocates well above --max-memory-per-child and then raises MemoryError, the way a
    leaking job ends: the child must be recycled after it."""

    tries = 2

    def backoff(self) -> int:
        return 0

    def handle(self) -> None:
        record(self, "start")
        hog = bytearray(self.data.get("mib", 200) * 1024 * 1024)
        hog[::4096] = b"x" * len(hog[::4096])
        raise MemoryError(f"ate {len(hog) >> 20} MiB")


class Hang(Job):
    """Blocks SIGALRM and sleeps: only the master's SIGKILL can stop it."""

    tries = 2
    timeout = 1

    def backoff(self) -> int:
        return 0

    def handle(self) -> None:
        record(self, "start")
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        time.sleep(3600)


class UniqueCount(Count):
    """Count, unique by all of its data until done."""

    unique = True


class UniqueCountStarted(Count):
    """Count, unique by all of its data until started."""

    unique = True
    unique_until = "started"


class LimitedCount(Count):
    """Count, at most two running at once."""

    concurrency = 2


class UniqueLimitedCount(Count):
    """Count, unique by all of its data and at most two running at once."""

    unique = True
    concurrency = 2
