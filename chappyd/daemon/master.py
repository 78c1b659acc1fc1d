"""The prefork master: the loop that spawns, supervises, recycles and stops the
children, and the table of what each signal does.

One loop owns all state (gunicorn's arbiter is the model, minus its old bugs):
signal handlers only append to a queue and wake the loop through set_wakeup_fd
(inbox.py); each turn the loop then reads the children's reports, acts on the
signals (handle_<signal>), reaps and settles dead children's jobs (pool.py,
reclaim.py), kills children past their deadlines (deadlines.py), spawns into empty
slots, and runs the timed chores that are due (chores.py). The master reaches the
backend only through the driver (link.py) and holds no connection across fork().
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

import structlog

from chappyd import logs
from chappyd.config import Settings
from chappyd.daemon import chores, reload, systemd
from chappyd.daemon.child import Budget, SharedFlag
from chappyd.daemon.children import ChildProc, RunningJob
from chappyd.daemon.deadlines import enforce_deadlines
from chappyd.daemon.inbox import SignalInbox
from chappyd.daemon.link import BackendLink
from chappyd.daemon.pool import Pool
from chappyd.daemon.reclaim import Settlement, Settlements
from chappyd.daemon.reports import Kind, Report, readable
from chappyd.daemon.status import Status
from chappyd.drivers import driver_class
from chappyd.drivers.base import Driver, WorkerInfo
from chappyd.errors import ExitStatus
from chappyd.jobs import Registry
from chappyd.scheduler import Scheduler
from chappyd.validate import MAX_WORKERS, fd_budget_problem
from chappyd.worker import Outcome

if TYPE_CHECKING:
    from chappyd.daemon.observe import Observer

log = structlog.get_logger("chappyd.master")

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
        self.pool = Pool(self)
        self.settlements = Settlements()
        self.inbox = SignalInbox()
        self.chores = chores.daemon_chores()
        self.scheduler = Scheduler.for_master(registry, settings)  # periodic jobs' ticks
        self.schedule_wait_s = 0.001  # until the scheduler's first run says otherwise
        self.status = Status(self)
        self.paused = False
        self.pause_flag = SharedFlag()
        self.jobs_done = 0
        self.exit_status = ExitStatus.OK
        self.interrupts = 0
        self.reload_asked = False
        self.announce_ready = True
        self.started_at = time.time()
        self.stop_deadline = 0.0  # monotonic, once stopping
        driver_class(settings)  # its client library imported before the loop
        self.link = BackendLink(settings)
        self._last_turn = 0.0
        self.budget: Budget | None = None
        self.observer: Observer | None = None
        if settings.metrics_address:
            from chappyd.daemon.observe import Observer  # prometheus_client only then

            self.observer = Observer(self)
            self.chores.append(self.observer.chore())
        if options.max_jobs is not None:
            import multiprocessing

            # shared with every child: exactly N reservations in total (docs/design.md §7)
            self.budget = multiprocessing.get_context("fork").Semaphore(options.max_jobs)

    @property
    def starting(self) -> bool:
        return self.state is State.STARTING

    @property
    def running(self) -> bool:
        return self.state is State.RUNNING

    @property
    def stopping(self) -> bool:
        return self.state is State.STOPPING

    # -- the loop ----------------------------------------------------------------------
    def run(self) -> int:
        structlog.contextvars.bind_contextvars(pid=self.pid)
        if self.observer is not None:
            self.observer.bind()  # before the backend is reached: backend_up 0 is news
        self.inbox.install()
        self.status.title()
        log.info("master_started", queues=list(self.settings.queues), workers=self.target,
                 backend=self.settings.backend_description)
        try:
            while not self.stopping or self.pool.children or self._settlements_left():
                self._wait()
                self._read_reports()
                self._handle_signals()
                self.pool.reap()
                self.settlements.settle(self.link, self.registry, self.settings,
                                        self._settled)
                enforce_deadlines(self)
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
        fds = [self.inbox.wake_fd, *(c.reader.fd for c in self.pool.children.values())]
        if self.observer is not None:
            fds += self.observer.fds()
        ready = readable(fds, 0.0 if self.inbox or self._backend_untried() else LOOP_TICK_S)
        self._last_turn = time.monotonic()
        if self.observer is not None:
            self.observer.serve(ready)

    def _backend_untried(self) -> bool:
        """Starting and the backend not yet tried (or reached): nothing to wait for, the
        first turn's tick alone was a quarter of a second before the first fork. A backend
        found down is retried on the link's backoff, so the tick applies again then."""
        return self.starting and self.link.outage_since is None

    def _chores(self) -> None:
        chores.run_due(self.chores, self, time.monotonic())

    # -- signals: handle_<name> for SIG<NAME>, looked up by name -----------------------------
    def _handle_signals(self) -> None:
        self.reload_asked = False
        for signum in self.inbox.drain():
            if signum == signal.SIGCHLD:
                continue  # the reap runs every turn anyway
            name = signal.Signals(signum).name
            log.info("signal_received", signal=name)
            handler = getattr(self, f"handle_{name.removeprefix('SIG').lower()}", None)
            if handler is not None:
                handler()
        if self.reload_asked and not self.stopping:
            self.reload()  # also while waiting for the backend: the URL may be the fix

    def handle_term(self) -> None:
        self.stop(graceful=True)

    def handle_int(self) -> None:
        """Ctrl-C: a graceful stop; a second one stops at once."""
        self.interrupts += 1
        if self.interrupts > 1:
            self.handle_quit()
        else:
            self.handle_term()

    def handle_quit(self) -> None:
        self.stop(graceful=False)

    def handle_hup(self) -> None:
        self.reload_asked = True  # a burst of HUPs reloads once, after the drain

    def handle_ttin(self) -> None:
        """One child more, within the same bounds a --workers flag has."""
        wanted = self.target + 1
        problem = (f"at most {MAX_WORKERS} workers" if wanted > MAX_WORKERS
                   else fd_budget_problem(wanted))
        if problem:
            log.warning("worker_not_added", workers=self.target, problem=problem)
            return
        self.target = wanted

    def handle_ttou(self) -> None:
        self.target = max(1, self.target - 1)

    def handle_tstp(self) -> None:
        self._pause(True)

    def handle_cont(self) -> None:
        self._pause(False)

    def handle_usr1(self) -> None:
        logs.reopen_log_files()
        self.pool.signal_all(signal.SIGUSR1)

    def _pause(self, paused: bool) -> None:
        if self.paused != paused:
            self.paused = paused
            log.info("reserving_paused" if paused else "reserving_resumed")
        self.pause_flag.set(paused)
        self.status.title()

    def stop(self, graceful: bool) -> None:
        """Begin a stop: TERM lets running jobs finish within the graceful timeout;
        QUIT kills the children at once. Either way their jobs come back refunded."""
        now = time.monotonic()
        if not self.stopping:
            systemd.notify("STOPPING=1")
            log.info("stopping", graceful=graceful,
                     graceful_timeout_s=self.settings.graceful_timeout_s)
            self.state = State.STOPPING
            self.stop_deadline = now + self.settings.graceful_timeout_s
            self.status.title()
        if graceful:
            self.pool.retire_all()
        else:
            self.stop_deadline = now
            self.pool.kill_for_stop()

    def reload(self) -> None:
        """HUP: re-read the configuration; replace the children gracefully."""
        reload.reload(self)

    # -- children --------------------------------------------------------------------------
    def _manage_children(self) -> None:
        if self.starting:
            self._start()
        if not self.running:
            return
        self.pool.fill()
        if self.announce_ready and self.pool.all_ready():
            self.announce_ready = False
            systemd.notify("READY=1", f"STATUS={self.status.text()}")
            log.info("ready", workers=self.target)

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

    # -- reports: what the children say, as it arrives -------------------------------------
    def _read_reports(self) -> None:
        for child in list(self.pool.children.values()):
            for report in child.reader.read():
                self.on_report(child, report)

    def on_report(self, child: ChildProc, report: Report) -> None:
        child.last_seen = time.monotonic()
        if report.kind is Kind.READY:
            self.pool.booted(child)
        elif report.kind is Kind.STARTED:
            child.job = RunningJob(report.text("id"), report.text("job"),
                                   report.number("timeout_s"), time.monotonic(),
                                   report.text("queue"))
            if self.observer is not None:
                self.observer.started(report)
        elif report.kind is Kind.FINISHED:
            if self.observer is not None:
                self.observer.finished(child, report)
            child.job = None
            self.pool.worked()
            if report.text("outcome") not in ("released", "unrecorded"):
                child.jobs_done += 1
                self._count_finished()
        elif report.kind is Kind.LEAVING:
            log.info("child_recycling", worker=child.slot, child_pid=child.pid,
                     reason=report.text("reason"), jobs=int(report.number("jobs")))
            child.left_for = report.text("reason")
            self.pool.leaving(child)

    def _settled(self, item: Settlement, outcome: str) -> None:
        """A dead child's started attempt, settled: --max counts it unless given back."""
        if outcome != Outcome.RELEASED:
            self._count_finished()
        if self.observer is not None:
            self.observer.settled(item, outcome)

    def _count_finished(self) -> None:
        self.jobs_done += 1
        limit = self.options.max_jobs
        if limit is not None and self.jobs_done >= limit and self.running:
            log.info("max_jobs_reached", jobs=self.jobs_done)
            self.stop(graceful=True)

    def _settlements_left(self) -> bool:
        # a stop does not wait forever for a dead backend: leases expire instead
        if self.settlements and self.link.outage_since is not None:
            waited = time.monotonic() - self.link.outage_since
            if waited > self.settings.lease_s and self.stopping:
                log.warning("settlements_abandoned", count=len(self.settlements),
                            note="their leases expire and any master takes them back")
                self.settlements.clear()
        return bool(self.settlements)

    # -- what the chores ask -----------------------------------------------------------------
    def queues_empty(self, driver: Driver) -> bool:
        return not driver.has_work(self.settings.queues)

    def info(self) -> WorkerInfo:
        return WorkerInfo(self.host, self.pid, tuple(self.settings.queues), self.target,
                          self.busy(), self.jobs_done, self.started_at, time.time())

    def busy(self) -> int:
        return sum(c.job is not None for c in self.pool.children.values())

    # -- the end ---------------------------------------------------------------------------------
    def _shutdown(self) -> None:
        if self.pool.children:  # an exception in the loop: never leave children behind
            for owner in self.pool.end_all():
                self.link.call(lambda d, owner=owner: d.release_owner(owner))
        if not self.starting:
            self.link.call(lambda d: d.remove_worker(self.host, self.pid))
        self.link.close()
        self.inbox.close()
        if self.observer is not None:
            self.observer.close()
        log.info("master_stopped", jobs=self.jobs_done, status=int(self.exit_status))
