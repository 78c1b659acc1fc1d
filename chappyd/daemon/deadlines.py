"""The master's deadlines: a job past its timeout, an idle child gone silent, a child
that never booted, and the graceful stop's end. Runs in the master, every turn."""

from __future__ import annotations

import signal
import time
from typing import TYPE_CHECKING

import structlog

from chappyd.daemon.children import ChildProc, Doom

if TYPE_CHECKING:
    from chappyd.daemon.master import Master

log = structlog.get_logger("chappyd.master")

#: A child whose job outlived its timeout by this much is SIGKILLed: the worker's
#: own SIGALRM did not bring it back (a job blocking in C code, or ignoring it).
TIMEOUT_GRACE_S = 3.0
#: An idle child silent this long is hung (idle children report every second).
HUNG_AFTER_S = 60.0
#: A child that has not said READY after this long is killed as a boot failure.
BOOT_TIMEOUT_S = 30.0


def enforce_deadlines(master: Master) -> None:
    now = time.monotonic()
    pool = master.pool
    if master.stopping and now >= master.stop_deadline:
        alive = [c for c in pool.children.values() if c.doom is not Doom.STOP]
        if alive:
            log.warning("graceful_timeout_expired", children=len(alive),
                        busy=sum(c.job is not None for c in alive))
            pool.kill_for_stop()
    for child in pool.children.values():
        if child.doom is None:
            child.doom = overdue(child, now)
            if child.doom is not None:
                pool.kill(child, signal.SIGKILL)


def overdue(child: ChildProc, now: float) -> Doom | None:
    """Why `child` must be killed now, if it must (logged)."""
    job = child.job
    if job is not None and now > job.started + job.timeout_s + TIMEOUT_GRACE_S:
        log.error("job_timeout_kill", worker=child.slot, child_pid=child.pid,
                  job=job.name, job_id=job.id, timeout_s=job.timeout_s)
        return Doom.TIMEOUT
    if job is None and child.ready and now - child.last_seen > HUNG_AFTER_S:
        log.error("child_hung", worker=child.slot, child_pid=child.pid,
                  silent_s=round(now - child.last_seen, 1))
        return Doom.HUNG
    if not child.ready and now - child.spawned > BOOT_TIMEOUT_S:
        log.error("child_boot_timeout", worker=child.slot, child_pid=child.pid)
        return Doom.HUNG
    return None
