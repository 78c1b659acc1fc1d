"""The prefork master: spawns, supervises, recycles and stops the children.

One loop owns all state (gunicorn's arbiter is the model, minus its old bugs):
signal handlers only append to a queue and wake the loop through set_wakeup_fd; the
loop then reads the children's reports, acts on the signals, reaps with
waitpid(WNOHANG) (never in a handler), settles dead children's jobs, kills children
past their deadlines, spawns into empty slots, and does the backend chores (lease
renewal, expiry, heartbeat). The master reaches the backend only through the driver
and holds no connection across fork().
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

import structlog

from chappyd import logs, systemd, titles
from chappyd.child import (
    CHILD_BOOT_ERROR,
    FORK_BLOCKED_SIGNALS,
    Budget,
    ChildSpec,
    SharedFlag,
    owner_of,
    run_child,
)
from chappyd.children import (
    ChildProc,
    Doom,
    EarlyDeaths,
    RunningJob,
    describe_status,
    settlement_for,
)
from chappyd.config import Settings
from chappyd.drivers.base import HEARTBEAT_INTERVAL_S, Driver, WorkerInfo
from chappyd.errors import ChappyError, ExitStatus
from chappyd.inbox import SignalInbox
from chappyd.jobs import Registry
from chappyd.link import BackendLink
from chappyd.reclaim import Settlement, settle
from chappyd.reports import Kind, Report, ReportReader, readable
from chappyd.scheduler import Scheduler
from chappyd.validate import MAX_WORKERS, fd_budget_problem

log = structlog.get_logger("chappyd.master")

#: A child whose job outlived its timeout by this much is SIGKILLed: the worker's
#: own SIGALRM did not bring it back (a job blocking in C code, or ignoring it).
TIMEOUT_GRACE_S = 3.0
#: An idle child silent this long is hung (idle children report every second).
HUNG_AFTER_S = 60.0
#: A child that has not said READY after this long is killed as a boot failure.
BOOT_TIMEOUT_S = 30.0
#: Consecutive boot failures (no child became ready in between) before giving up.
MAX_BOOT_FAILURES = 5
#: Backoff for respawns after boot failures: first, cap.
BACKOFF_S = (0.25, 10.0)
#: expire_leases every this often at most: any master takes over within lease + 5 s.
EXPIRE_EVERY_S = 4.0
STOP_WHEN_EMPTY_EVERY_S = 0.5
STATUS_EVERY_S = 1.0
LOOP_TICK_S = 0.25
#: Children report every job; under load the loop takes their reports in batches at
#: most this often instead of waking per report. Signals still wake it at once.
REPORT_BATCH_S = 0.005

class State(StrEnum):
    STARTING = "starting"  # waiting for the backend before the first fork
    RUNNING = "running"
    STOPPING = "stopping"  # no new children; waiting for the current ones to leave


@dataclass(frozen=True, slots=True)
class RunOptions:
    """What the command line asks beyond Settings."""

    max_jobs: int | None = None  # --max: finished attempts across all children
    stop_when_empty: bool = False


@dataclass(slots=True)
class Timers:
    """Next due time (monotonic) of each periodic chore."""

    lease: float = 0.0
    expire: float = 0.0
    heartbeat: float = 0.0
    empty_check: float = 0.0
    status: float = 0.0
    watchdog: float = 0.0
    spawn: float = 0.0
    stop_deadline: float = 0.0
    schedule: float = 0.0


class Master:
    def __init__(self, settings: Settings, registry: Registry, options: RunOptions,
                 reload_settings: Callable[[], Settings]) -> None:
        self.settings = settings
        self.registry = registry
        self.options = options
        self.reload_settings = reload_settings
        self.pid = os.getpid()
        self.host = socket.gethostname()
        self.state = State.STARTING
        self.target = settings.workers
        self.children: dict[int, ChildProc] = {}
        self.slots: dict[int, int] = {}  # slot -> pid of its current (non-retiring) child
        self.pending: deque[Settlement] = deque()
        self.inbox = SignalInbox()
        self.timers = Timers()
        self.paused = False
        self.pause_flag = SharedFlag()
        self.jobs_done = 0
        self.exit_status = ExitStatus.OK
        self.boot_failures = 0
        self.early_deaths = EarlyDeaths()
        self.interrupts = 0
        self.announce_ready = True
        self.started_at = time.time()
        self.link = BackendLink(settings)
        self.scheduler = Scheduler.for_master(registry, settings)  # periodic jobs' ticks
        self._last_status = ""
        self._last_turn = 0.0
        self.budget: Budget | None = None
        if options.max_jobs is not None:
            import multiprocessing

            # shared with every child: exactly N reservations in total (docs/design.md §7)
            self.budget = multiprocessing.get_context("fork").Semaphore(options.max_jobs)

    # -- the loop ----------------------------------------------------------------------
    def run(self) -> int:
        self.inbox.install()
        structlog.contextvars.bind_contextvars(pid=self.pid)
        self._title()
        log.info("master_started", queues=list(self.settings.queues), workers=self.target,
                 backend=self.settings.backend_description)
        try:
            while self.state is not State.STOPPING or self.children or self._pending_left():
                self._wait()
                self._read_reports()
                self._handle_signals()
                self._reap()
                self._settle_pending()
                self._enforce_deadlines()
                self._manage_children()
                self._chores()
        finally:
            self._shutdown()
        return int(self.exit_status)

    def _wait(self) -> None:
        # children's reports and signals wake the loop at once; chores are due at
        # most every lease/3 >= 0.66 s, so a quarter-second tick keeps them on time
        # a turn per report cost ~60 us of master CPU a job at thousands of jobs a
        # second, on cores the children need: after a busy turn, let reports gather
        since_s = time.monotonic() - self._last_turn
        if since_s < REPORT_BATCH_S and not self.inbox:
            readable([self.inbox.wake_fd], REPORT_BATCH_S - since_s)
        fds = [self.inbox.wake_fd, *(c.reader.fd for c in self.children.values())]
        readable(fds, 0.0 if self.inbox else LOOP_TICK_S)
        self._last_turn = time.monotonic()

    # -- signals ---------------------------------------------------------------------------
    def _handle_signals(self) -> None:
        reload = False
        for signum in self.inbox.drain():
            if signum == signal.SIGCHLD:
                continue  # the reap below runs every turn anyway
            log.info("signal_received", signal=signal.Signals(signum).name)
            if signum == signal.SIGINT:
                self.interrupts += 1
                signum = signal.SIGQUIT if self.interrupts > 1 else signal.SIGTERM
            if signum == signal.SIGTERM:
                self.stop(graceful=True)
            elif signum == signal.SIGQUIT:
                self.stop(graceful=False)
            elif signum == signal.SIGHUP:
                reload = True  # a burst of HUPs reloads once
            elif signum == signal.SIGTTIN:
                self._add_worker()
            elif signum == signal.SIGTTOU:
                self.target = max(1, self.target - 1)
            elif signum in (signal.SIGTSTP, signal.SIGCONT):
                self._pause(signum == signal.SIGTSTP)
            elif signum == signal.SIGUSR1:
                logs.reopen_log_files()
                self._signal_children(signal.SIGUSR1)
        if reload and self.state is not State.STOPPING:
            self.reload()  # also while waiting for the backend: the URL may be the fix

    def _add_worker(self) -> None:
        """TTIN: one child more, within the same bounds a --workers flag has."""
        wanted = self.target + 1
        problem = (f"at most {MAX_WORKERS} workers" if wanted > MAX_WORKERS
                   else fd_budget_problem(wanted))
        if problem:
            log.warning("worker_not_added", workers=self.target, problem=problem)
            return
        self.target = wanted

    def _pause(self, paused: bool) -> None:
        if self.paused != paused:
            self.paused = paused
            log.info("reserving_paused" if paused else "reserving_resumed")
        self.pause_flag.set(paused)
        self._title()

    def stop(self, graceful: bool) -> None:
        """Begin a stop: TERM lets running jobs finish within the graceful timeout;
        QUIT kills the children at once. Either way their jobs come back refunded."""
        now = time.monotonic()
        if self.state is not State.STOPPING:
            systemd.notify("STOPPING=1")
            log.info("stopping", graceful=graceful,
                     graceful_timeout_s=self.settings.graceful_timeout_s)
            self.state = State.STOPPING
            self.timers.stop_deadline = now + self.settings.graceful_timeout_s
            self._title()
        if graceful:
            for child in self.children.values():
                if not child.retiring:
                    child.retiring = True
                    self._kill(child, signal.SIGTERM)
            self.slots.clear()
        else:
            self.timers.stop_deadline = now
            self._kill_for_stop()

    def _kill_for_stop(self) -> None:
        for child in self.children.values():
            child.doom = Doom.STOP
            self._kill(child, signal.SIGKILL)
        self.slots.clear()

    def reload(self) -> None:
        """HUP: re-read the configuration; replace the children gracefully."""
        systemd.reloading()
        try:
            settings = self.reload_settings()
        except ChappyError as exc:
            log.error("reload_failed", error=str(exc), action="keeping the old configuration")
            systemd.notify("READY=1", f"STATUS=reload failed: {exc}")
            return
        if settings.jobs != self.settings.jobs:
            log.warning("jobs_changed_needs_restart", jobs=list(settings.jobs))
        if (settings.log_format, settings.log_level) != (self.settings.log_format,
                                                         self.settings.log_level):
            logs.configure_logging(settings.log_format, settings.log_level)
        for warning in settings.warnings:
            log.warning("config_warning", problem=warning)
        self.settings, self.target = settings, settings.workers
        self.scheduler = Scheduler.for_master(self.registry, settings)  # queues may differ
        self.link.close()  # the backend URL may have changed
        self.link.settings = settings
        self._retire([c for c in self.children.values() if not c.retiring])
        self.announce_ready = True
        log.info("reloaded", queues=list(settings.queues), workers=self.target)
        self._title()

    # -- children --------------------------------------------------------------------------
    def _manage_children(self) -> None:
        if self.state is State.STARTING:
            self._start()
        if self.state is not State.RUNNING:
            return
        extra = sorted(slot for slot in self.slots if slot > self.target)
        self._retire([self.children[self.slots[slot]] for slot in extra])
        now = time.monotonic()
        if now < self.timers.spawn:
            return  # backing off after boot failures
        missing = [slot for slot in range(1, self.target + 1) if slot not in self.slots]
        if missing:
            self.link.close()  # never carry a backend connection across fork()
            for slot in missing:
                self._spawn(slot)
        if self.announce_ready and self._all_ready():
            self.announce_ready = False
            systemd.notify("READY=1", f"STATUS={self._status_text()}")
            log.info("ready", workers=self.target)

    def _all_ready(self) -> bool:
        return len(self.slots) >= self.target and all(
            self.children[pid].ready for pid in self.slots.values())

    def _start(self) -> None:
        """Reach the backend (creating the schema) before the first fork; a backend
        that is down is waited for, not a configuration error (docs/design.md §5)."""
        if self.settings.auto_migrate:
            reached = self.link.call(lambda d: (d.migrate(), True)[1])
        else:
            reached = self.link.call(lambda d: (d.paused_queues(), True)[1])
        if not reached:
            return
        problem = self.link.call(lambda d: d.persistence_warning())
        if problem:
            log.warning("persistence_warning", problem=str(problem))
        self.state = State.RUNNING

    def _spawn(self, slot: int) -> None:
        read_fd, write_fd = os.pipe()
        others = [c.reader.fd for c in self.children.values()]
        spec = ChildSpec(
            slot=slot, host=self.host, master_pid=self.pid, settings=self.settings,
            report_fd=write_fd, max_jobs=self._child_max_jobs(), budget=self.budget,
            close_fds=(read_fd, *self.inbox.fds, *others), paused=self.pause_flag,
        )
        # signals stay blocked across fork() until the child has its own handlers, so
        # a TERM sent to a brand-new child is never handled by the master's code
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, FORK_BLOCKED_SIGNALS)
        pid = os.fork()
        if pid == 0:
            run_child(spec, self.registry)  # never returns
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        os.close(write_fd)
        now = time.monotonic()
        self.children[pid] = ChildProc(slot, pid, owner_of(self.host, self.pid, pid),
                                       ReportReader(read_fd), now, now)
        self.slots[slot] = pid
        log.info("child_spawned", worker=slot, child_pid=pid)

    def _child_max_jobs(self) -> int | None:
        limit = self.settings.max_jobs_per_child
        if not limit:
            return None
        # jitter below the limit so that children started together do not all
        # recycle together (gunicorn's max_requests_jitter)
        return max(1, limit - random.randint(0, limit // 10))

    def _retire(self, children: list[ChildProc]) -> None:
        """Let children finish their current job and leave; their slots are free now."""
        for child in children:
            child.retiring = True
            if self.slots.get(child.slot) == child.pid:
                del self.slots[child.slot]
            self._kill(child, signal.SIGTERM)

    def _kill(self, child: ChildProc, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):  # already dead: the reap finds it
            os.kill(child.pid, signum)

    def _signal_children(self, signum: int) -> None:
        for child in self.children.values():
            self._kill(child, signum)

    # -- reports ---------------------------------------------------------------------------
    def _read_reports(self) -> None:
        for child in list(self.children.values()):
            for report in child.reader.read():
                self._on_report(child, report)

    def _on_report(self, child: ChildProc, report: Report) -> None:
        child.last_seen = time.monotonic()
        if report.kind is Kind.READY:
            child.ready = True
            self.boot_failures = 0
            if not self.early_deaths.count:  # keep a crash backoff running
                self.timers.spawn = 0.0
        elif report.kind is Kind.STARTED:
            child.job = RunningJob(report.text("id"), report.text("job"),
                                   report.number("timeout_s"), time.monotonic())
        elif report.kind is Kind.FINISHED:
            child.job = None
            self.early_deaths.worked()
            if report.text("outcome") not in ("released", "unrecorded"):
                child.jobs_done += 1
                self._count_finished()
        elif report.kind is Kind.LEAVING:
            log.info("child_recycling", worker=child.slot, child_pid=child.pid,
                     reason=report.text("reason"), jobs=int(report.number("jobs")))
            # its successor starts now, while it exits: no gap in the slot
            child.retiring = True
            if self.slots.get(child.slot) == child.pid:
                del self.slots[child.slot]

    def _count_finished(self) -> None:
        self.jobs_done += 1
        limit = self.options.max_jobs
        if limit is not None and self.jobs_done >= limit and self.state is State.RUNNING:
            log.info("max_jobs_reached", jobs=self.jobs_done)
            self.stop(graceful=True)

    # -- reaping -----------------------------------------------------------------------------
    def _reap(self) -> None:
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
                self._on_report(child, report)
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
            self.timers.spawn = max(self.timers.spawn, time.monotonic() + delay_s)
        self.pending.append(settlement_for(child, status))

    def _boot_failed(self, child: ChildProc, status: int) -> None:
        self.boot_failures += 1
        delay_s = min(BACKOFF_S[0] * 2 ** (self.boot_failures - 1), BACKOFF_S[1])
        self.timers.spawn = time.monotonic() + delay_s
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == CHILD_BOOT_ERROR:
            reason = "it could not set itself up"
        else:
            reason = describe_status(status)
        log.error("child_boot_failed", worker=child.slot, reason=reason,
                  failures=self.boot_failures, respawn_in_s=delay_s)
        if self.boot_failures >= MAX_BOOT_FAILURES and self.state is State.RUNNING:
            log.critical("children_cannot_start", failures=self.boot_failures)
            self.exit_status = ExitStatus.SOFTWARE
            self.stop(graceful=False)

    def _settle_pending(self) -> None:
        while self.pending:
            item = self.pending[0]
            result = self.link.call(
                lambda d, item=item: settle(d, self.registry, self.settings, item))
            if result is None:
                return  # backend down: retried on a later turn, in order
            self.pending.popleft()
            if result:
                self._count_finished()

    def _pending_left(self) -> bool:
        # a stop does not wait forever for a dead backend: leases expire instead
        if self.pending and self.link.outage_since is not None:
            waited = time.monotonic() - self.link.outage_since
            if waited > self.settings.lease_s and self.state is State.STOPPING:
                log.warning("settlements_abandoned", count=len(self.pending),
                            note="their leases expire and any master takes them back")
                self.pending.clear()
        return bool(self.pending)

    # -- deadlines ---------------------------------------------------------------------------
    def _enforce_deadlines(self) -> None:
        now = time.monotonic()
        if self.state is State.STOPPING and now >= self.timers.stop_deadline:
            alive = [c for c in self.children.values() if c.doom is not Doom.STOP]
            if alive:
                log.warning("graceful_timeout_expired", children=len(alive),
                            busy=sum(c.job is not None for c in alive))
                self._kill_for_stop()
        for child in self.children.values():
            if child.doom is not None:
                continue
            job = child.job
            if job is not None and now > job.started + job.timeout_s + TIMEOUT_GRACE_S:
                log.error("job_timeout_kill", worker=child.slot, child_pid=child.pid,
                          job=job.name, job_id=job.id, timeout_s=job.timeout_s)
                child.doom = Doom.TIMEOUT
            elif job is None and child.ready and now - child.last_seen > HUNG_AFTER_S:
                log.error("child_hung", worker=child.slot, child_pid=child.pid,
                          silent_s=round(now - child.last_seen, 1))
                child.doom = Doom.HUNG
            elif not child.ready and now - child.spawned > BOOT_TIMEOUT_S:
                log.error("child_boot_timeout", worker=child.slot, child_pid=child.pid)
                child.doom = Doom.HUNG
            if child.doom is not None:
                self._kill(child, signal.SIGKILL)

    # -- backend chores ----------------------------------------------------------------------
    def _chores(self) -> None:
        now = time.monotonic()
        lease_s = self.settings.lease_s
        owners = [c.owner for c in self.children.values()]
        if (owners and now >= self.timers.lease
                and self.link.call(lambda d: d.extend_leases(owners, lease_s)) is not None):
            self.timers.lease = now + lease_s / 3
        if self.state is not State.STARTING and now >= self.timers.expire:
            expired = self.link.call(lambda d: d.expire_leases())
            if expired:
                log.warning("leases_expired", count=expired)
            self.timers.expire = now + min(EXPIRE_EVERY_S, lease_s / 2)
        if self.state is not State.STARTING and now >= self.timers.heartbeat:
            self.link.call(lambda d: d.heartbeat(self._info()))
            self.timers.heartbeat = now + HEARTBEAT_INTERVAL_S
        if self.scheduler and self.state is State.RUNNING and now >= self.timers.schedule:
            wall = datetime.now(UTC)
            due = self.link.call(lambda d: self.scheduler.run_due(d, wall))
            self.timers.schedule = now + self.scheduler.wait_s(due, wall)
        if (self.options.stop_when_empty and self.state is State.RUNNING
                and not self.announce_ready and now >= self.timers.empty_check):
            self.timers.empty_check = now + STOP_WHEN_EMPTY_EVERY_S
            if not self.pending and self.link.call(self._queues_empty):
                log.info("queues_empty", jobs=self.jobs_done)
                self.stop(graceful=True)
        if now >= self.timers.status:
            self.timers.status = now + STATUS_EVERY_S
            self._publish_status()
        watchdog_s = systemd.watchdog_interval_s()
        if watchdog_s and now >= self.timers.watchdog:
            systemd.notify("WATCHDOG=1")
            self.timers.watchdog = now + watchdog_s

    def _queues_empty(self, driver: Driver) -> bool:
        wanted = set(self.settings.queues)
        return not any(s.ready or s.reserved for s in driver.stats() if s.queue in wanted)

    def _info(self) -> WorkerInfo:
        return WorkerInfo(self.host, self.pid, tuple(self.settings.queues), self.target,
                          self._busy(), self.jobs_done, self.started_at, time.time())

    def _busy(self) -> int:
        return sum(c.job is not None for c in self.children.values())

    # -- status and titles ---------------------------------------------------------------------
    def _status_text(self) -> str:
        if self.link.outage_since is not None:
            what = "waiting for the backend" if self.state is State.STARTING else \
                "backend unavailable"
            return f"{what}: {self.link.last_error}"
        text = (f"{len(self.slots)} of {self.target} workers, {self._busy()} busy, "
                f"{self.jobs_done} jobs done")
        if self.paused:
            text += ", paused"
        if self.state is State.STOPPING:
            text = f"stopping: {len(self.children)} children left, {self.jobs_done} jobs done"
        return text

    def _publish_status(self) -> None:
        text = self._status_text()
        if text != self._last_status:
            self._last_status = text
            systemd.notify(f"STATUS={text}")
        self._title()

    def _title(self) -> None:
        note = "stopping" if self.state is State.STOPPING else (
            "paused" if self.paused else "")
        titles.set_title(titles.master_title(self.settings.queues, self.target, note))

    # -- the end ---------------------------------------------------------------------------------
    def _shutdown(self) -> None:
        if self.children:  # an exception in the loop: never leave children behind
            self._kill_for_stop()
            for pid in list(self.children):
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, 0)
                child = self.children.pop(pid)
                self.link.call(lambda d, owner=child.owner: d.release_owner(owner))
        if self.state is not State.STARTING:
            self.link.call(lambda d: d.remove_worker(self.host, self.pid))
        self.link.close()
        self.inbox.close()
        log.info("master_stopped", jobs=self.jobs_done, status=int(self.exit_status))
