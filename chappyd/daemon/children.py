"""The master's record of each child, and what a child's death means for its jobs."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from enum import StrEnum

import structlog

from chappyd.daemon.reclaim import Settle, Settlement
from chappyd.daemon.reports import ReportReader
from chappyd.daemon.unacked import UnackedSlot

log = structlog.get_logger("chappyd.master")


class Doom(StrEnum):
    """Why the master ended a child; decides what happens to its jobs."""

    STOP = "stop"        # daemon stopping: jobs released, attempts refunded
    TIMEOUT = "timeout"  # its job ran past timeout + grace: JobTimeout, a failed attempt
    HUNG = "hung"        # silent too long while idle, or never booted


@dataclass(slots=True)
class RunningJob:
    id: str
    name: str
    timeout_s: float
    started: float  # monotonic
    queue: str = ""


@dataclass(slots=True)
class ChildProc:
    slot: int
    pid: int
    owner: str
    reader: ReportReader
    spawned: float
    last_seen: float
    ready: bool = False
    job: RunningJob | None = None
    doom: Doom | None = None
    retiring: bool = False  # told to leave; its slot is free for a successor
    jobs_done: int = 0
    left_for: str = ""  # the reason of its LEAVING report (max_jobs, memory), if any
    unacked: UnackedSlot | None = None  # the jobs it finished and has not acked


class EarlyDeaths:
    """Children that died soon after they started, in a row, and how long to wait
    before the next fork.

    A child can crash after it said READY (in its first wait, on its first row): the
    boot backoff does not see that, and without this the master would fork a
    replacement every few milliseconds, forever. Whatever the cause, a child that dies
    within EARLY_S of its spawn counts; one that lives longer, or finishes a job,
    ends the run. The delay doubles from BACKOFF_S[0] up to BACKOFF_S[1].
    """

    EARLY_S = 5.0
    #: short enough that a deploy fixing the cause is picked up at once, long enough
    #: that a loop costs nothing (one fork per slot a second at most)
    BACKOFF_S = (0.1, 1.0)

    def __init__(self) -> None:
        self.count = 0

    def died(self, child: ChildProc, status: int, now: float) -> float | None:
        """Count `child`'s death; the respawn delay if it died early, else None."""
        if child.doom is Doom.STOP or child.retiring or _clean_exit(child, status):
            return None
        if now - child.spawned >= self.EARLY_S or child.jobs_done:
            self.count = 0
            return None
        self.count += 1
        delay_s = min(self.BACKOFF_S[0] * 2 ** (self.count - 1), self.BACKOFF_S[1])
        log.error("child_died_early", worker=child.slot, reason=describe_status(status),
                  lived_s=round(now - child.spawned, 3), failures=self.count,
                  respawn_in_s=delay_s)
        return delay_s

    def worked(self) -> None:
        self.count = 0


def _clean_exit(child: ChildProc, status: int) -> bool:
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 and child.job is None


def settlement_for(child: ChildProc, status: int) -> Settlement:
    """What to do with the jobs of `child`, dead with wait status `status`: the job it
    was running is a failed attempt (docs/design.md §3.4), the rest go back refunded."""
    job = child.job
    finished = child.unacked.read() if child.unacked is not None else ()
    if child.doom is Doom.STOP:
        if job is None:
            return Settlement(child.owner, Settle.REFUND, finished=finished)
        return Settlement(child.owner, Settle.REFUND, job.id, job_name=job.name,
                          queue=job.queue, finished=finished)
    if job is None:
        return Settlement(child.owner, Settle.FAILED, finished=finished)
    if child.doom is Doom.TIMEOUT:
        error = (f"JobTimeout: {job.name} exceeded its timeout of {job.timeout_s:g} s "
                 f"and its worker did not stop; killed with signal 9")
    else:
        error = (f"WorkerDied: worker {child.slot} (pid {child.pid}) running {job.name} "
                 f"{describe_status(status)}")
    duration_s = round(time.monotonic() - job.started, 6)
    return Settlement(child.owner, Settle.FAILED, job.id, error, duration_s, job.name,
                      job.queue, finished)


def describe_status(status: int) -> str:
    """`exited with code 1` or `was killed by signal 9 (SIGKILL)`."""
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = "unknown"
        return f"was killed by signal {signum} ({name})"
    return f"exited with code {os.WEXITSTATUS(status)}"
