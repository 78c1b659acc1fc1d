"""The one rule for a failed attempt, used by the child's worker (a job that raised or
timed out) and by the master's reclaim (a child that died running it) alike.

- How many attempts a job gets: the payload's (or caller's) max_attempts, else the
  class's `tries`, else the configured MAX_ATTEMPTS.
- After a failed attempt: fewer attempts than that -> retry at now + backoff(attempts);
  else fail, with the error text kept in `exception`.

It takes the job instance and plain values, never imports jobs.py (which uses it).
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import structlog

from chappyd.payloads import payload_max_attempts

if TYPE_CHECKING:
    from chappyd.drivers.base import Driver, Reservation
    from chappyd.jobs import Job

log = structlog.get_logger("chappyd.worker")

#: `exception` keeps at most this much text; a 10 MB traceback helps nobody.
MAX_ERROR_CHARS = 65_536


def resolve_max_attempts(given: int | None, tries: int | None, default: int) -> int:
    """Attempts in all: `given` (the payload's or the dispatcher's), else the class's
    `tries`, else `default` (the configured MAX_ATTEMPTS); the first positive one."""
    for value in (given, tries):
        if value is not None and value > 0:
            return value
    return default


def reserved_max_attempts(job: Job, default: int) -> int:
    """A reserved job's attempts in all: its payload's, else `tries`, else `default`
    (the daemon's own settings, so that --config counts)."""
    return resolve_max_attempts(payload_max_attempts(job.payload), job.tries, default)


def backoff_seconds(backoff: int | float | list[int | float], attempts: int) -> float:
    """The delay after failed attempt number `attempts` (1-based)."""
    if isinstance(backoff, list | tuple):
        if not backoff:
            return 0.0
        return float(max(0, backoff[min(attempts, len(backoff)) - 1]))
    return float(max(0, backoff))


def job_backoff_s(job: Job, attempts: int) -> float:
    """The job's backoff after failed attempt `attempts`; 0 if backoff() itself fails."""
    try:
        return backoff_seconds(job.backoff(), attempts)
    except Exception as exc:
        log.error("backoff_failed", job=type(job).name, error=f"{type(exc).__name__}: {exc}")
        return 0.0


def format_error(exc: BaseException, with_traceback: bool = True) -> str:
    """`Class: message` then the traceback: what `exception` holds."""
    head = f"{type(exc).__name__}: {exc}"
    if not with_traceback:
        return head[:MAX_ERROR_CHARS]
    text = head + "\n" + "".join(traceback.format_exception(exc))
    return text[:MAX_ERROR_CHARS]


def exceeded_error(attempts: int, max_attempts: int) -> str:
    """For a job reserved past its last attempt (an earlier one left no result)."""
    return (f"MaxAttemptsExceeded: attempt {attempts} of {max_attempts}; an earlier "
            "attempt ended without a result (its worker died or its lease expired)")


@dataclass(frozen=True, slots=True)
class AfterFailure:
    """What a failed attempt became: `action` is "retry" or "fail"; `stored` is False
    when the lease was lost (the new holder decides)."""

    action: Literal["retry", "fail"]
    stored: bool
    retry_in_s: float | None = None


def fail_attempt(driver: Driver, job: Job, reservation: Reservation, max_attempts: int,
                 error: str) -> AfterFailure:
    """Apply the rule to `reservation` (attempt `reservation.attempts` of `max_attempts`
    just failed with `error`) through the driver."""
    if reservation.attempts >= max_attempts:
        return AfterFailure("fail", driver.fail(reservation, error))
    delay_s = job_backoff_s(job, reservation.attempts)
    stored = driver.retry(reservation, time.time() + delay_s, error)
    return AfterFailure("retry", stored, delay_s)
