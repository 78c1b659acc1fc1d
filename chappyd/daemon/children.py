"""The master's record of each child, and what a child's death means for its jobs."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from enum import StrEnum

from chappyd.daemon.reclaim import Settle, Settlement
from chappyd.daemon.reports import ReportReader


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


def settlement_for(child: ChildProc, status: int) -> Settlement:
    """What to do with the jobs of `child`, dead with wait status `status`: the job it
    was running is a failed attempt (docs/design.md §3.4), the rest go back refunded."""
    if child.doom is Doom.STOP:
        return Settlement(child.owner, Settle.REFUND)
    job = child.job
    if job is None:
        return Settlement(child.owner, Settle.FAILED)
    if child.doom is Doom.TIMEOUT:
        error = (f"JobTimeout: {job.name} exceeded its timeout of {job.timeout_s:g} s "
                 f"and its worker did not stop; killed with signal 9")
    else:
        error = (f"WorkerDied: worker {child.slot} (pid {child.pid}) running {job.name} "
                 f"{describe_status(status)}")
    duration_s = round(time.monotonic() - job.started, 6)
    return Settlement(child.owner, Settle.FAILED, job.id, error, duration_s)


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
