"""One pre-forked child: set itself up after fork, drive the worker loop
(worker.py's Worker.run), report to the master over its pipe through the loop's
events, and leave on the master's word, its own limits, or the master's death.

Signals to a child: TERM finish the current job then exit; QUIT stop now (a running
job is interrupted and released, attempt refunded); USR1 reopen log files. INT, HUP,
TSTP, TTIN and TTOU are the master's business: a Ctrl-C or Ctrl-Z reaches the whole
process group, and the master decides what happens (pausing reaches children
through a shared flag, see SharedFlag).
"""

from __future__ import annotations

import contextlib
import ctypes
import mmap
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any, NoReturn

import structlog

from chappyd import logs
from chappyd.config import Settings
from chappyd.daemon import systemd, titles
from chappyd.daemon.reports import MAX_NAME_CHARS, Kind, ReportWriter
from chappyd.daemon.unacked import UnackedSlot
from chappyd.drivers import open_driver
from chappyd.drivers.base import Reservation
from chappyd.errors import ExitStatus, Interrupt
from chappyd.jobs import Registry
from chappyd.worker import NAP_S, Budget, Outcome, Started, Worker, WorkerEvents

log = structlog.get_logger("chappyd.child")

#: A child that cannot set itself up exits with this, so that the master tells a
#: boot failure (back off, maybe give up) from a crash (replace at once).
CHILD_BOOT_ERROR = 3
#: Idle children report liveness at least this often; the master kills a child
#: silent for much longer (see deadlines.HUNG_AFTER_S).
ALIVE_EVERY_S = 1.0

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
#: Blocked by the master around fork(); the child unblocks them once its own
#: handlers are installed.
FORK_BLOCKED_SIGNALS = frozenset({
    signal.SIGTERM, signal.SIGQUIT, signal.SIGINT, signal.SIGHUP, signal.SIGTSTP,
    signal.SIGCONT, signal.SIGUSR1, signal.SIGTTIN, signal.SIGTTOU, signal.SIGCHLD,
})


class _WakeUp(Interrupt):
    """Ends an idle wait on TERM, so that idle children leave at once instead of at
    the end of their wait (up to worker.IDLE_WAIT_S). Raised only while idle in
    driver.wait(), where no transaction is open and the child exits right after (an
    Interrupt, so that one escaping the wait still ends the child cleanly)."""


class SharedFlag:
    """One byte of memory shared by the master and every child forked after it.

    Pausing goes through this, not through TSTP/CONT sent to children: Python runs
    pending signal handlers in signal-number order, so a child that got TSTP and then
    CONT in quick succession would see CONT (18) before TSTP (20) and stay paused.
    """

    def __init__(self) -> None:
        self._memory = mmap.mmap(-1, 1)  # anonymous and MAP_SHARED: survives fork()

    def set(self, value: bool) -> None:
        self._memory[0] = 1 if value else 0

    def is_set(self) -> bool:
        return self._memory[0] == 1


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """Everything a child needs, fixed in the master before fork."""

    slot: int
    host: str
    master_pid: int
    settings: Settings
    report_fd: int
    max_jobs: int | None  # this child's recycling limit, jitter applied; None = never
    budget: Budget | None = None
    close_fds: Sequence[int] = ()
    paused: SharedFlag | None = None  # the master's pause (TSTP/CONT)
    unacked: UnackedSlot | None = None  # its finished, unacked jobs, for the master


def owner_of(host: str, master_pid: int, child_pid: int) -> str:
    """The owner string of a child's reservations (drivers/base.py)."""
    return f"{host}:{master_pid}:{child_pid}"


def run_child(spec: ChildSpec, registry: Registry) -> NoReturn:
    """The child's whole life, called right after fork(); never returns."""
    code = int(ExitStatus.OK)
    try:
        child = Child(spec, registry)
    except BaseException:
        log.exception("child_boot_failed", worker=spec.slot)
        os._exit(CHILD_BOOT_ERROR)
    try:
        child.run()
    except BaseException as exc:
        if not isinstance(exc, Interrupt | SystemExit):
            log.exception("child_crashed")
            code = int(ExitStatus.SOFTWARE)
    finally:
        child.close()
    # _exit: no atexit handlers or buffered files inherited from the master run twice
    os._exit(code)


class Child(WorkerEvents):
    def __init__(self, spec: ChildSpec, registry: Registry) -> None:
        self.spec = spec
        self.queues = spec.settings.queues
        self.reports = ReportWriter(spec.report_fd)
        self.owner = owner_of(spec.host, spec.master_pid, os.getpid())
        self.stopping = False
        self.in_job = False
        self.in_wait = False
        self._reopen_logs = False
        self._last_alive = 0.0
        self._left = False  # told the master why it leaves (LEAVING sent)
        self._shown: tuple[str | None, str | None, str] | None = None  # the title's parts
        self._setup_process()
        self.worker = Worker(open_driver(spec.settings), registry, spec.settings,
                             self.owner, self.queues, events=self, budget=spec.budget,
                             ack_log=spec.unacked)
        self.reports.send(Kind.READY)

    # -- set-up after fork ----------------------------------------------------------
    def _setup_process(self) -> None:
        signal.set_wakeup_fd(-1)  # the master's self-pipe is not ours
        for fd in self.spec.close_fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        handlers: dict[int, Any] = {
            signal.SIGTERM: self._on_term, signal.SIGQUIT: self._on_quit,
            signal.SIGTSTP: signal.SIG_IGN, signal.SIGCONT: signal.SIG_DFL,
            signal.SIGUSR1: self._on_usr1, signal.SIGINT: signal.SIG_IGN,
            signal.SIGHUP: signal.SIG_IGN, signal.SIGTTIN: signal.SIG_IGN,
            signal.SIGTTOU: signal.SIG_IGN, signal.SIGCHLD: signal.SIG_DFL,
            signal.SIGUSR2: signal.SIG_DFL, signal.SIGWINCH: signal.SIG_DFL,
        }
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, FORK_BLOCKED_SIGNALS)
        die_with_parent(signal.SIGQUIT)
        if os.getppid() != self.spec.master_pid:  # it died before prctl took effect
            os._exit(int(ExitStatus.OK))
        systemd.forget_notify_socket()
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(worker=self.spec.slot, pid=os.getpid())
        self._title()

    # -- signal handlers: record, or interrupt the running job -------------------------
    def _on_term(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True
        if self.in_wait:
            self.in_wait = False
            raise _WakeUp()

    def _on_quit(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True
        if self.in_wait:
            self.in_wait = False
            raise _WakeUp()
        if self.in_job:
            # the worker releases the job (attempt refunded) and re-raises
            raise Interrupt("the daemon is stopping")

    def _on_usr1(self, signum: int, frame: FrameType | None) -> None:
        self._reopen_logs = True

    # -- the loop: the worker's, with this child's events -------------------------------
    def run(self) -> None:
        max_jobs = self.spec.max_jobs
        done = self.worker.run(self._should_stop, max_jobs=max_jobs, ride_out_outages=True)
        reached = max_jobs is not None and done >= max_jobs
        if reached and not self._left and not self._should_stop():
            self.reports.send(Kind.LEAVING, reason="max_jobs", jobs=done)

    def _should_stop(self) -> bool:
        return self.stopping or not self._master_alive()

    # -- WorkerEvents ---------------------------------------------------------------
    def tick(self) -> None:
        now = time.monotonic()
        if now - self._last_alive >= ALIVE_EVERY_S:
            self._last_alive = now
            self.reports.send(Kind.ALIVE)
        if self._reopen_logs:
            self._reopen_logs = False
            logs.reopen_log_files()
        self._title()

    def paused(self) -> bool:
        return self.spec.paused is not None and self.spec.paused.is_set()

    def nap(self, seconds: float) -> None:
        """Sleep in short steps so that a stop or the master's death ends it early."""
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(min(NAP_S, max(0.0, deadline - time.monotonic())))
            if not self._master_alive():
                return
            if time.monotonic() - self._last_alive >= ALIVE_EVERY_S:
                self._last_alive = time.monotonic()
                self.reports.send(Kind.ALIVE)

    def idle(self, wait: Callable[[], None]) -> None:
        if self.stopping:
            return
        try:
            self.in_wait = True
            wait()
        except _WakeUp:
            pass
        finally:
            self.in_wait = False

    def job_started(self, started: Started) -> None:
        reservation = started.reservation
        self.reports.started(reservation.id, started.job_name[:MAX_NAME_CHARS],
                             started.timeout_s, reservation.queue, reservation.attempts,
                             wait_seconds(started))
        self._title(started.job_name, reservation.id)
        self.in_job = True

    def job_finished(self, started: Started, outcome: Outcome) -> None:
        self.in_job = False
        self._title()

    def attempt_ended(self, reservation: Reservation, outcome: str,
                      duration_s: float | None) -> None:
        if duration_s is None:
            self.reports.send(Kind.FINISHED, id=reservation.id, outcome=outcome,
                              queue=reservation.queue)
        else:
            self.reports.finished(reservation.id, outcome, duration_s, reservation.queue)

    def leave_after(self, done: int) -> bool:
        if self._over_memory():
            self.reports.send(Kind.LEAVING, reason="memory", jobs=done)
            self._left = True
            return True
        return False

    def _master_alive(self) -> bool:
        # PR_SET_PDEATHSIG covers most cases; this check covers the rest
        return os.getppid() == self.spec.master_pid

    def _over_memory(self) -> bool:
        limit_mib = self.spec.settings.max_memory_per_child_mib
        if not limit_mib:
            return False
        rss = rss_bytes()
        if rss > limit_mib * 1024 * 1024:
            log.info("child_over_memory", rss_mib=round(rss / 1048576, 1), limit_mib=limit_mib)
            return True
        return False

    def _title(self, job: str | None = None, job_id: str | None = None) -> None:
        # every turn of the loop asks (a pause or a stop shows at once), but
        # setproctitle() only runs when the title changes: twice a job, not three times
        note = ""
        if job is None:
            note = "paused" if self.paused() else ("stopping" if self.stopping else "idle")
        shown = (job, job_id, note)
        if shown != self._shown:
            self._shown = shown
            titles.set_title(titles.worker_title(self.spec.slot, self.queues, job, job_id, note))

    def close(self) -> None:
        self.worker.release_prefetched()
        # Whatever this child still holds goes back now, attempt refunded, rather than
        # when its lease runs out. The token-fenced releases above should have left
        # nothing; a full-suite run once found a Redis job still reserved after the
        # master's SIGKILL, so this catches what they miss and says so.
        if self.stopping:
            with contextlib.suppress(Exception):
                left = self.worker.driver.release_owner(self.owner)
                if left:
                    log.warning("released_on_exit", count=left, owner=self.owner)
        with contextlib.suppress(Exception):
            self.worker.driver.close()


def wait_seconds(started: Started) -> float | None:
    """How long a first attempt waited from available to started; None for a retry,
    whose payload still holds the first availability time, not the retry's."""
    if started.reservation.attempts != 1 or started.available_at is None:
        return None
    return round(max(0.0, time.time() - started.available_at), 6)


def die_with_parent(signum: int) -> None:
    """Ask Linux to send `signum` to this process when its parent dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: the getppid() check in the loop still notices


def rss_bytes(pid: int | str = "self") -> int:
    """Resident set size of a process, from /proc/<pid>/statm."""
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0
