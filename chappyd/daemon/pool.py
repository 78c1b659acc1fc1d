"""The master's children: spawn into empty slots, retire, signal, reap, and what a
death means (a settlement for its jobs, a backoff after boot failures). Runs in the
master; the fork itself happens here.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import time
from typing import TYPE_CHECKING

import structlog

from chappyd.daemon.child import (
    CHILD_BOOT_ERROR,
    FORK_BLOCKED_SIGNALS,
    ChildSpec,
    owner_of,
    run_child,
)
from chappyd.daemon.children import (
    ChildProc,
    Doom,
    EarlyDeaths,
    describe_status,
    settlement_for,
)
from chappyd.daemon.reports import ReportReader
from chappyd.daemon.unacked import UnackedSlot
from chappyd.errors import ExitStatus

if TYPE_CHECKING:
    from chappyd.daemon.master import Master

log = structlog.get_logger("chappyd.master")

#: Consecutive boot failures (no child became ready in between) before giving up.
MAX_BOOT_FAILURES = 5
#: Backoff for respawns after boot failures: first, cap.
BACKOFF_S = (0.25, 10.0)


class Pool:
    """The children by pid, and which child holds each worker slot (1..target)."""

    def __init__(self, master: Master) -> None:
        self.master = master
        self.children: dict[int, ChildProc] = {}
        self.slots: dict[int, int] = {}  # slot -> pid of its current (non-retiring) child
        self.boot_failures = 0
        self.early_deaths = EarlyDeaths()
        self.spawn_after = 0.0  # monotonic; backing off after boot failures until then

    # -- filling the slots -------------------------------------------------------------
    def fill(self) -> None:
        """Retire the children of slots above the target; spawn into empty slots."""
        target = self.master.target
        extra = sorted(slot for slot in self.slots if slot > target)
        self.retire([self.children[self.slots[slot]] for slot in extra])
        if time.monotonic() < self.spawn_after:
            return  # backing off after boot failures or early deaths
        missing = [slot for slot in range(1, target + 1) if slot not in self.slots]
        if missing:
            self.master.link.close()  # never carry a backend connection across fork()
            for slot in missing:
                self._spawn(slot)

    def all_ready(self) -> bool:
        return len(self.slots) >= self.master.target and all(
            self.children[pid].ready for pid in self.slots.values())

    def _spawn(self, slot: int) -> None:
        master = self.master
        read_fd, write_fd = os.pipe()
        unacked = UnackedSlot()
        others = [c.reader.fd for c in self.children.values()]
        if master.observer is not None:
            others += master.observer.fds()  # no child may hold the metrics socket
        spec = ChildSpec(
            slot=slot, host=master.host, master_pid=master.pid, settings=master.settings,
            report_fd=write_fd, max_jobs=self._child_max_jobs(), budget=master.budget,
            close_fds=(read_fd, *master.inbox.fds, *others), paused=master.pause_flag,
            unacked=unacked,
        )
        # signals stay blocked across fork() until the child has its own handlers, so
        # a TERM sent to a brand-new child is never handled by the master's code
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, FORK_BLOCKED_SIGNALS)
        pid = os.fork()
        if pid == 0:
            run_child(spec, master.registry)  # never returns
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        os.close(write_fd)
        now = time.monotonic()
        self.children[pid] = ChildProc(slot, pid, owner_of(master.host, master.pid, pid),
                                       ReportReader(read_fd), now, now, unacked=unacked)
        self.slots[slot] = pid
        log.info("child_spawned", worker=slot, child_pid=pid)

    def _child_max_jobs(self) -> int | None:
        limit = self.master.settings.max_jobs_per_child
        if not limit:
            return None
        # jitter below the limit so that children started together do not all
        # recycle together (gunicorn's max_requests_jitter)
        return max(1, limit - random.randint(0, limit // 10))

    # -- what children say ---------------------------------------------------------------
    def booted(self, child: ChildProc) -> None:
        """READY: it set itself up; boot failures so far are forgiven."""
        child.ready = True
        self.boot_failures = 0
        if not self.early_deaths.count:  # keep a crash backoff running
            self.spawn_after = 0.0

    def worked(self) -> None:
        """FINISHED: a child got through a job; early deaths so far are forgiven."""
        self.early_deaths.worked()

    def leaving(self, child: ChildProc) -> None:
        """LEAVING (its own limits): its successor starts now, while it exits."""
        child.retiring = True
        if self.slots.get(child.slot) == child.pid:
            del self.slots[child.slot]

    # -- ending children -------------------------------------------------------------------
    def retire(self, children: list[ChildProc]) -> None:
        """Let children finish their current job and leave; their slots are free now."""
        for child in children:
            child.retiring = True
            if self.slots.get(child.slot) == child.pid:
                del self.slots[child.slot]
            self.kill(child, signal.SIGTERM)

    def retire_all(self) -> None:
        """A graceful stop: TERM to every child not told yet."""
        for child in self.children.values():
            if not child.retiring:
                child.retiring = True
                self.kill(child, signal.SIGTERM)
        self.slots.clear()

    def kill_for_stop(self) -> None:
        for child in self.children.values():
            child.doom = Doom.STOP
            self.kill(child, signal.SIGKILL)
        self.slots.clear()

    def kill(self, child: ChildProc, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):  # already dead: the reap finds it
            os.kill(child.pid, signum)

    def signal_all(self, signum: int) -> None:
        for child in self.children.values():
            self.kill(child, signum)

    # -- deaths ------------------------------------------------------------------------------
    def reap(self) -> None:
        """waitpid(WNOHANG) until none is left to reap; never in a signal handler."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            child = self.children.pop(pid, None)
            if child is None:
                continue  # not one of ours (the master has no other children)
            for report in child.reader.read():  # what it said just before dying
                self.master.on_report(child, report)
            child.reader.close()
            if self.slots.get(child.slot) == pid:
                del self.slots[child.slot]
            self._after_death(child, status)

    def _after_death(self, child: ChildProc, status: int) -> None:
        fields = dict(worker=child.slot, child_pid=child.pid, status=describe_status(status),
                      jobs=child.jobs_done)
        if child.doom is Doom.STOP:
            log.info("child_stopped", **fields)
        elif os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 and child.job is None:
            log.info("child_exited", **fields)
        else:
            log.error("child_died", **fields, doom=child.doom and str(child.doom))
        if not child.ready and child.doom is not Doom.STOP:
            self._boot_failed(child, status)
        elif (delay_s := self.early_deaths.died(child, status, time.monotonic())) is not None:
            # a crash right after start-up, whatever its cause: no hot fork loop
            self.spawn_after = max(self.spawn_after, time.monotonic() + delay_s)
        self.master.settlements.add(settlement_for(child, status))
        if child.unacked is not None:
            child.unacked.close()
        if self.master.observer is not None:
            self.master.observer.exited(child, status)

    def _boot_failed(self, child: ChildProc, status: int) -> None:
        self.boot_failures += 1
        delay_s = min(BACKOFF_S[0] * 2 ** (self.boot_failures - 1), BACKOFF_S[1])
        self.spawn_after = time.monotonic() + delay_s
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == CHILD_BOOT_ERROR:
            reason = "it could not set itself up"
        else:
            reason = describe_status(status)
        log.error("child_boot_failed", worker=child.slot, reason=reason,
                  failures=self.boot_failures, respawn_in_s=delay_s)
        if self.boot_failures >= MAX_BOOT_FAILURES and self.master.running:
            log.critical("children_cannot_start", failures=self.boot_failures)
            self.master.exit_status = ExitStatus.SOFTWARE
            self.master.stop(graceful=False)

    def end_all(self) -> list[str]:
        """After an exception in the loop: kill and wait for every child (never leave
        one behind); returns their owners, whose jobs go back."""
        self.kill_for_stop()
        owners = []
        for pid in list(self.children):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            owners.append(self.children.pop(pid).owner)
        return owners
