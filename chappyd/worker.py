"""One worker's loop: reserve -> run -> ack / retry with backoff / fail.

This is the loop each of the daemon's children drives (daemon/child.py sets the
process up and passes its WorkerEvents); benchmarks and test workers run the same
loop with the default, no-op events. It knows the driver only through
drivers/base.py and knows nothing of processes; `chappyd --once` uses run_once().
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import structlog

from chappyd.attempts import exceeded_error, fail_attempt, format_error, reserved_max_attempts
from chappyd.config import Settings
from chappyd.drivers import open_driver
from chappyd.drivers.base import Driver, Reservation
from chappyd.errors import BackendUnavailable, Interrupt, InvalidPayload, JobTimeout, UnknownJob
from chappyd.jobs import Job, Registry
from chappyd.logs import drops
from chappyd.payloads import payload_available_at
from chappyd.prefetch import GIVE_BACK_AFTER_S, AckLog, Prefetched
from chappyd.timelimit import TimeLimit

log = structlog.get_logger("chappyd.worker")
_stdlib_log = logging.getLogger("chappyd.worker")  # the one structlog's level filter asks

#: An idle worker re-checks its stop flag at least this often.
IDLE_WAIT_S = 1.0
#: Backoff while the backend is down (with ride_out_outages): first wait, cap.
OUTAGE_BACKOFF_S = (0.5, 10.0)
#: How long a paused or budget-less worker naps between looks at its flags.
NAP_S = 0.1


class Outcome(StrEnum):
    DONE = "done"
    RETRIED = "retried"
    FAILED = "failed"
    RELEASED = "released"
    STALE = "stale"  # our lease was taken over; the new holder decides


@dataclass(frozen=True, slots=True)
class Started:
    """What a worker is running, for titles and the master's bookkeeping."""

    reservation: Reservation
    job_name: str
    timeout_s: float
    #: the payload's available_at (unix s): the first attempt's wait starts there
    available_at: float | None = None


class Budget(Protocol):
    """The --max=N allowance shared by all children (a process-shared semaphore)."""

    def acquire(self, block: bool = True) -> bool: ...

    def release(self) -> None: ...


class Turn(StrEnum):
    RAN = "ran"      # an attempt ran to an outcome
    IDLE = "idle"    # nothing to run: waited, or napped for want of budget
    EMPTY = "empty"  # nothing ready or reserved is left (stop_when_empty)


class WorkerEvents:
    """What the loop tells, and asks, whoever drives it: the daemon's child reports
    to the master, keeps its title, pauses and leaves on its limits through these.
    The defaults here suit a bare worker (a benchmark, a test process)."""

    def tick(self) -> None:
        """Every turn of the loop, before anything else (housekeeping)."""

    def paused(self) -> bool:
        return False

    def nap(self, seconds: float) -> None:
        time.sleep(seconds)

    def idle(self, wait: Callable[[], None]) -> None:
        """Nothing ready: `wait()` blocks until a job may be (at most IDLE_WAIT_S)."""
        wait()

    def job_started(self, started: Started) -> None:
        pass

    def job_finished(self, started: Started, outcome: Outcome) -> None:
        """After a job that started (not for a payload rejected unrun)."""

    def attempt_ended(self, reservation: Reservation, outcome: str,
                      duration_s: float | None) -> None:
        """After every reservation taken to an outcome, started or rejected; outcome
        "unrecorded" (duration None) when the backend went down before it was stored."""

    def leave_after(self, done: int) -> bool:
        """After each finished attempt: True ends the loop (a child over its limits)."""
        return False


class _Outage:
    """While the backend is down: since when, and the next backoff."""

    def __init__(self) -> None:
        self.since: float | None = None
        self.backoff_s = OUTAGE_BACKOFF_S[0]


class Worker:
    def __init__(
        self,
        driver: Driver,
        registry: Registry,
        settings: Settings,
        owner: str,
        queues: Sequence[str] | None = None,
        events: WorkerEvents | None = None,
        budget: Budget | None = None,
        ack_log: AckLog | None = None,
    ) -> None:
        self.driver = driver
        self.registry = registry
        self.settings = settings
        self.owner = owner
        self.queues = tuple(queues or settings.queues)
        self.events = events or WorkerEvents()
        self.budget = budget
        # reservations not started yet; given back by a helper thread on their own
        # connection once the job ahead has run a while (see prefetch.py)
        self._prefetched = Prefetched(lambda: open_driver(settings), ack_log)
        self._time_limit = TimeLimit()

    # -- the loop ---------------------------------------------------------------
    def run(
        self,
        should_stop: Callable[[], bool],
        max_jobs: int | None = None,
        stop_when_empty: bool = False,
        ride_out_outages: bool = False,
    ) -> int:
        """Run jobs until `should_stop()`, `max_jobs` finished attempts, the events'
        leave_after(), or (with `stop_when_empty`) nothing ready or reserved is left.
        With `ride_out_outages`, a backend that goes down is waited out (backoff,
        reconnect, what could not be recorded given back) instead of raised.
        Returns the count of finished attempts."""
        done = 0
        outage = _Outage() if ride_out_outages else None
        self._time_limit.hold()
        try:
            while not should_stop() and (max_jobs is None or done < max_jobs):
                self.events.tick()
                if self.events.paused():
                    self._flush_acks_if_up()
                    self.events.nap(NAP_S)
                    continue
                try:
                    if outage is not None and outage.since is not None:
                        self._recover(outage, outage.since)
                    turn = self.turn(stop_when_empty)
                except BackendUnavailable as exc:
                    if outage is None:
                        raise
                    self._went_down(outage, exc)
                    continue
                if turn is Turn.EMPTY:
                    break
                if turn is Turn.RAN:
                    done += 1
                    if self.events.leave_after(done):
                        break
        finally:
            self._time_limit.let_go()
            self.release_prefetched()
        return done

    def turn(self, stop_when_empty: bool = False) -> Turn:
        """Reserve and run one job, within the --max budget if there is one."""
        budget = self.budget
        if budget is not None and not budget.acquire(False):
            self.flush_acks()
            self.events.nap(NAP_S)  # --max reached: the master stops us when the rest finish
            return Turn.IDLE
        try:
            reservation = self.next_reservation(limit=1 if budget else None)
        except BaseException:
            if budget is not None:
                budget.release()
            raise
        if reservation is None:
            if budget is not None:
                budget.release()
            if stop_when_empty and self.queues_empty():
                return Turn.EMPTY
            self.events.idle(lambda: self.driver.wait(self.queues, IDLE_WAIT_S))
            return Turn.IDLE
        began = time.monotonic()
        try:
            outcome = str(self.process(reservation))
        except BackendUnavailable:
            # the outcome could not be recorded; _recover() gives the job back, and
            # its --max allowance goes back too: it will run again
            self.events.attempt_ended(reservation, "unrecorded", None)
            if budget is not None:
                budget.release()
            raise
        self.events.attempt_ended(reservation, outcome, round(time.monotonic() - began, 6))
        return Turn.RAN

    def _went_down(self, outage: _Outage, exc: BackendUnavailable) -> None:
        if outage.since is None:
            outage.since = time.monotonic()
            log.warning("backend_unavailable", error=str(exc))
        self._reset_driver()
        self.events.nap(outage.backoff_s)
        outage.backoff_s = min(outage.backoff_s * 2, OUTAGE_BACKOFF_S[1])

    def _recover(self, outage: _Outage, since: float) -> None:
        """The first call after an outage: the acks deferred across it are stored, and
        jobs whose outcome we could not record go back (refunded); raises
        BackendUnavailable while it is still down."""
        self.flush_acks()
        released = self.driver.release_owner(self.owner)
        # those included the jobs prefetched before the outage: running them now, on
        # tokens no longer theirs, would run them twice (found by the outage fault test)
        self.drop_prefetched()
        log.info("backend_available", outage_s=round(time.monotonic() - since, 3),
                 released=released)
        outage.since, outage.backoff_s = None, OUTAGE_BACKOFF_S[0]

    def _reset_driver(self) -> None:
        with contextlib.suppress(Exception):
            self.driver.close()
        self.driver = open_driver(self.settings)

    def run_once(self) -> bool:
        """Run the next ready job, if any; True when one ran."""
        reservation = self.next_reservation(limit=1)
        if reservation is None:
            return False
        self.process(reservation)
        self.flush_acks()
        return True

    def next_reservation(self, limit: int | None = None) -> Reservation | None:
        reservation = self._prefetched.take()
        if reservation is None:
            limit = limit or max(1, self.driver.prefetch)
            acks = self._prefetched.take_unacked()
            if acks:
                try:
                    acked, batch = self.driver.ack_and_reserve(
                        acks, self.queues, self.owner, self.settings.lease_s, limit)
                except BaseException:
                    self._prefetched.acked(acks, stored=False)
                    raise
                self._acks_stored(acks, acked)
            else:
                batch = self.driver.reserve(self.queues, self.owner, self.settings.lease_s,
                                            limit)
            self._prefetched.add(batch)
            reservation = self._prefetched.take()
        return reservation

    def flush_acks(self) -> None:
        """Store the deferred acks now (raises BackendUnavailable, keeping them)."""
        acks = self._prefetched.take_unacked()
        if not acks:
            return
        try:
            acked = self.driver.ack_many(acks)
        except BaseException:
            self._prefetched.acked(acks, stored=False)
            raise
        self._acks_stored(acks, acked)

    def _flush_acks_if_up(self) -> None:
        with contextlib.suppress(BackendUnavailable):  # kept for the next flush
            self.flush_acks()

    def _acks_stored(self, acks: Sequence[Reservation], acked: int) -> None:
        self._prefetched.acked(acks, stored=True)
        if acked < len(acks):
            # a lease taken over between a short job's end and this flush: the job's
            # outcome is its new holder's (which one of the batch is not told)
            log.warning("lease_lost", action="ack", count=len(acks) - acked,
                        ids=[r.id for r in acks])

    def release_prefetched(self) -> None:
        """Store the deferred acks, give back jobs reserved but not started (attempts
        refunded), and end the give-back helper (the worker is done reserving)."""
        self._prefetched.stop()
        try:
            self.flush_acks()
        except BackendUnavailable:
            # still in the ack log: a daemon's master acks them once this child is gone
            log.warning("ack_failed", count=len(self._prefetched.take_unacked()))
        pending = self._prefetched.take_all()
        if pending:
            try:
                self.driver.release(pending)
            except BackendUnavailable:
                # their leases expire and any master takes them back; nothing is lost
                log.warning("release_failed", count=len(pending))

    def drop_prefetched(self) -> None:
        """Forget jobs reserved but not started, without a round trip: for a caller
        that already gave back everything this owner holds (release_owner)."""
        self._prefetched.take_all()

    def queues_empty(self) -> bool:
        return not self.driver.has_work(self.queues)

    # -- one job ------------------------------------------------------------------
    def process(self, reservation: Reservation) -> Outcome:
        """Run one reserved job to its outcome; never raises for the job's own errors."""
        bound = _JobLog({"job_id": reservation.id, "queue": reservation.queue,
                         "attempt": reservation.attempts})
        try:
            job = self.registry.job_for(reservation)
        except (InvalidPayload, UnknownJob) as exc:
            # no retries: a payload does not become valid by waiting
            ok = self.driver.fail(reservation, format_error(exc, with_traceback=False))
            bound.error("job_rejected", error=str(exc), reason=type(exc).__name__)
            return Outcome.FAILED if ok else Outcome.STALE

        cls = type(job)
        max_attempts = reserved_max_attempts(job, self.settings.max_attempts)
        bound = bound.bind(job=cls.name)
        if reservation.attempts > max_attempts:
            error = exceeded_error(reservation.attempts, max_attempts)
            ok = self.driver.fail(reservation, error)
            bound.error("job_failed", error=error)
            return Outcome.FAILED if ok else Outcome.STALE

        timeout_s = float(cls.timeout or self.settings.job_timeout_s)
        started = Started(reservation, cls.name, timeout_s,
                          payload_available_at(job.payload, time.time()))
        self.events.job_started(started)
        outcome = self._run(job, started, max_attempts, bound)
        self.events.job_finished(started, outcome)
        return outcome

    def _run(self, job: Job, started: Started, max_attempts: int, bound: _JobLog) -> Outcome:
        reservation = started.reservation
        began = time.monotonic()
        try:
            with self._time_limit(started.timeout_s, started.job_name):
                job.handle()
        except JobTimeout as exc:
            return self._failed_attempt(job, reservation, max_attempts, exc, bound, began)
        except Interrupt:
            # the daemon is stopping: the job comes back at once, attempt refunded
            self.driver.release([reservation])
            bound.warning("job_released", duration_s=round(time.monotonic() - began, 6))
            raise
        except Exception as exc:
            return self._failed_attempt(job, reservation, max_attempts, exc, bound, began)
        duration = round(time.monotonic() - began, 6)
        if not self._ack(reservation, duration):
            bound.warning("lease_lost", duration_s=duration, action="ack")
            return Outcome.STALE
        bound.info("job_done", duration_s=duration)
        return Outcome.DONE

    def _ack(self, reservation: Reservation, duration_s: float) -> bool:
        """A short job's ack goes with the next reserve, one round trip for a batch
        (the give-back helper stores it if a long job comes first); a long job's, whose
        lease may have been taken over meanwhile, is stored and checked now."""
        if duration_s < GIVE_BACK_AFTER_S and self._prefetched.defer_ack(reservation):
            return True
        return self.driver.ack(reservation)

    def _failed_attempt(
        self,
        job: Job,
        reservation: Reservation,
        max_attempts: int,
        exc: BaseException,
        bound: _JobLog,
        began: float,
    ) -> Outcome:
        duration = round(time.monotonic() - began, 6)
        after = fail_attempt(self.driver, job, reservation, max_attempts, format_error(exc))
        if not after.stored:
            bound.warning("lease_lost", duration_s=duration, action=after.action)
            return Outcome.STALE
        if after.action == "fail":
            bound.error("job_failed", duration_s=duration, error=f"{type(exc).__name__}: {exc}")
            return Outcome.FAILED
        bound.warning("job_retry", duration_s=duration, retry_in_s=after.retry_in_s,
                      error=f"{type(exc).__name__}: {exc}")
        return Outcome.RETRIED


class _JobLog:
    """A job's log fields, bound into a structlog logger only for an event that is
    logged: the events and their fields are those of log.bind(**fields), but a job
    that succeeds at LOG_LEVEL=warning builds no bound logger (two binds and a
    dropped info line were ~6 us a job)."""

    __slots__ = ("fields",)

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields

    def bind(self, **more: Any) -> _JobLog:
        return _JobLog({**self.fields, **more})

    def info(self, event: str, **fields: Any) -> None:
        if not drops(_stdlib_log, logging.INFO):
            log.bind(**self.fields).info(event, **fields)

    def warning(self, event: str, **fields: Any) -> None:
        if not drops(_stdlib_log, logging.WARNING):
            log.bind(**self.fields).warning(event, **fields)

    def error(self, event: str, **fields: Any) -> None:
        if not drops(_stdlib_log, logging.ERROR):
            log.bind(**self.fields).error(event, **fields)
