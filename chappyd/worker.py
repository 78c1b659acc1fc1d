"""One worker's loop: reserve -> run -> ack / retry with backoff / fail.

It knows the driver only through drivers/base.py and knows nothing of processes:
the prefork master drives it in each child, `chappyd --once` drives it in-process.
"""

from __future__ import annotations

import signal
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from types import FrameType
from typing import Any

import structlog

from chappyd.config import Settings
from chappyd.drivers import open_driver
from chappyd.drivers.base import Driver, Reservation
from chappyd.errors import BackendUnavailable, Interrupt, InvalidPayload, JobTimeout, UnknownJob
from chappyd.jobs import (
    Job,
    Registry,
    backoff_seconds,
    decode_payload,
    payload_available_at,
    resolve_max_attempts,
)
from chappyd.prefetch import Prefetched

log = structlog.get_logger("chappyd.worker")

#: An idle worker re-checks its stop flag at least this often.
IDLE_WAIT_S = 1.0
#: `exception` keeps at most this much text; a 10 MB traceback helps nobody.
MAX_ERROR_CHARS = 65_536


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


class WorkerEvents:
    """Hooks the master's child process overrides; all are no-ops here."""

    def job_started(self, started: Started) -> None:
        pass

    def job_finished(self, started: Started, outcome: Outcome) -> None:
        pass


def format_error(exc: BaseException, with_traceback: bool = True) -> str:
    """`Class: message` then the traceback: what `exception` holds."""
    head = f"{type(exc).__name__}: {exc}"
    if not with_traceback:
        return head[:MAX_ERROR_CHARS]
    text = head + "\n" + "".join(traceback.format_exception(exc))
    return text[:MAX_ERROR_CHARS]


class Worker:
    def __init__(
        self,
        driver: Driver,
        registry: Registry,
        settings: Settings,
        owner: str,
        queues: Sequence[str] | None = None,
        events: WorkerEvents | None = None,
    ) -> None:
        self.driver = driver
        self.registry = registry
        self.settings = settings
        self.owner = owner
        self.queues = tuple(queues or settings.queues)
        self.events = events or WorkerEvents()
        # reservations not started yet; given back by a helper thread on their own
        # connection once the job ahead has run a while (see prefetch.py)
        self._prefetched = Prefetched(lambda: open_driver(settings))

    # -- the loop ---------------------------------------------------------------
    def run(
        self,
        should_stop: Callable[[], bool],
        max_jobs: int | None = None,
        stop_when_empty: bool = False,
    ) -> int:
        """Run jobs until `should_stop()`, `max_jobs` finished attempts, or (with
        `stop_when_empty`) nothing ready or reserved is left. Returns the count."""
        done = 0
        try:
            while not should_stop() and (max_jobs is None or done < max_jobs):
                reservation = self.next_reservation()
                if reservation is None:
                    if stop_when_empty and self.queues_empty():
                        break
                    self.driver.wait(self.queues, IDLE_WAIT_S)
                    continue
                self.process(reservation)
                done += 1
        finally:
            self.release_prefetched()
        return done

    def run_once(self) -> bool:
        """Run the next ready job, if any; True when one ran."""
        reservation = self.next_reservation(limit=1)
        if reservation is None:
            return False
        self.process(reservation)
        return True

    def next_reservation(self, limit: int | None = None) -> Reservation | None:
        reservation = self._prefetched.take()
        if reservation is None:
            batch = self.driver.reserve(
                self.queues, self.owner, self.settings.lease_s,
                limit or max(1, self.driver.prefetch),
            )
            self._prefetched.add(batch)
            reservation = self._prefetched.take()
        return reservation

    def release_prefetched(self) -> None:
        """Give back jobs reserved but not started, attempts refunded; ends the
        give-back helper (the worker is done reserving)."""
        self._prefetched.stop()
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
        wanted = set(self.queues)
        return not any(
            (s.ready or s.reserved) for s in self.driver.stats() if s.queue in wanted
        )

    # -- one job ------------------------------------------------------------------
    def process(self, reservation: Reservation) -> Outcome:
        """Run one reserved job to its outcome; never raises for the job's own errors."""
        bound = log.bind(job_id=reservation.id, queue=reservation.queue,
                         attempt=reservation.attempts)
        try:
            payload = decode_payload(reservation.payload)
            cls = self.registry.get(payload["job"])
        except (InvalidPayload, UnknownJob) as exc:
            # no retries: a payload does not become valid by waiting
            ok = self.driver.fail(reservation, format_error(exc, with_traceback=False))
            bound.error("job_rejected", error=str(exc), reason=type(exc).__name__)
            return Outcome.FAILED if ok else Outcome.STALE

        job = cls(payload.get("data") or {})
        job.job_id, job.attempts, job.payload = reservation.id, reservation.attempts, payload
        max_attempts = resolve_max_attempts(payload, cls, self.settings.max_attempts)
        bound = bound.bind(job=cls.name)
        if reservation.attempts > max_attempts:
            error = (f"MaxAttemptsExceeded: attempt {reservation.attempts} of {max_attempts}; "
                     "an earlier attempt ended without a result (its worker died or its "
                     "lease expired)")
            ok = self.driver.fail(reservation, error)
            bound.error("job_failed", error=error)
            return Outcome.FAILED if ok else Outcome.STALE

        timeout_s = float(cls.timeout or self.settings.job_timeout_s)
        started = Started(reservation, cls.name, timeout_s,
                          payload_available_at(payload, time.time()))
        self.events.job_started(started)
        outcome = self._run(job, started, max_attempts, bound)
        self.events.job_finished(started, outcome)
        return outcome

    def _run(self, job: Job, started: Started, max_attempts: int, bound: Any) -> Outcome:
        reservation = started.reservation
        began = time.monotonic()
        try:
            with _time_limit(started.timeout_s, started.job_name):
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
        if not self.driver.ack(reservation):
            bound.warning("lease_lost", duration_s=duration, action="ack")
            return Outcome.STALE
        bound.info("job_done", duration_s=duration)
        return Outcome.DONE

    def _failed_attempt(
        self,
        job: Job,
        reservation: Reservation,
        max_attempts: int,
        exc: BaseException,
        bound: Any,
        began: float,
    ) -> Outcome:
        duration = round(time.monotonic() - began, 6)
        error = format_error(exc)
        if reservation.attempts >= max_attempts:
            if not self.driver.fail(reservation, error):
                bound.warning("lease_lost", duration_s=duration, action="fail")
                return Outcome.STALE
            bound.error("job_failed", duration_s=duration, error=f"{type(exc).__name__}: {exc}")
            return Outcome.FAILED
        delay_s = job_backoff_s(job, reservation.attempts)
        if not self.driver.retry(reservation, time.time() + delay_s, error):
            bound.warning("lease_lost", duration_s=duration, action="retry")
            return Outcome.STALE
        bound.warning("job_retry", duration_s=duration, retry_in_s=delay_s,
                      error=f"{type(exc).__name__}: {exc}")
        return Outcome.RETRIED


def job_backoff_s(job: Job, attempts: int) -> float:
    """The job's backoff after failed attempt `attempts`; 0 if backoff() itself fails."""
    try:
        return backoff_seconds(job.backoff(), attempts)
    except Exception as exc:
        log.error("backoff_failed", job=type(job).name, error=f"{type(exc).__name__}: {exc}")
        return 0.0


class _time_limit:
    """Raise JobTimeout in the main thread after `seconds` (SIGALRM). The master
    SIGKILLs a child whose job ignores it."""

    def __init__(self, seconds: float, job_name: str) -> None:
        self.seconds, self.job_name = seconds, job_name

    def _expired(self, signum: int, frame: FrameType | None) -> None:
        raise JobTimeout(f"{self.job_name} exceeded its timeout of {self.seconds:g} s")

    def __enter__(self) -> None:
        self._previous = signal.signal(signal.SIGALRM, self._expired)
        signal.setitimer(signal.ITIMER_REAL, self.seconds)

    def __exit__(self, *exc_info: object) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self._previous)
