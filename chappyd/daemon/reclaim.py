"""What happens to the jobs of a child that is gone (docs/design.md §3, §7).

The master reaps a child, then settles what that child still holds, through the
driver alone: the job it was running is a failed attempt (backoff, or failed when
out of attempts) with `WorkerDied: ...` or `JobTimeout: ...` as its exception; jobs
it had reserved but not started go back with their attempt refunded. When the
daemon itself stops a child, everything it holds goes back refunded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum

import structlog

from chappyd.config import Settings
from chappyd.drivers.base import Driver, Reservation
from chappyd.errors import ChappyError
from chappyd.jobs import Registry, decode_payload, resolve_max_attempts
from chappyd.worker import job_backoff_s

log = structlog.get_logger("chappyd.master")


class Settle(StrEnum):
    REFUND = "refund"   # the daemon stopped the child: everything back, attempts refunded
    FAILED = "failed"   # the child died running `job_id`: a failed attempt


@dataclass(frozen=True, slots=True)
class Settlement:
    """A dead child's jobs to settle; kept and retried while the backend is down."""

    owner: str
    how: Settle
    job_id: str | None = None
    error: str = ""
    duration_s: float | None = None


def settle(driver: Driver, registry: Registry, settings: Settings, item: Settlement) -> bool:
    """Settle `item`; True when it ends a started attempt (for --max counting).
    Raises BackendUnavailable (nothing half-done matters: every step is guarded by
    the reservation's token, so a retry of the whole settlement is safe)."""
    if item.how is Settle.REFUND:
        released = driver.release_owner(item.owner)
        if released:
            log.info("jobs_released", owner=item.owner, count=released)
        return False
    held = driver.held_by(item.owner)
    running = [r for r in held if r.id == item.job_id]
    unstarted = [r for r in held if r.id != item.job_id]
    if unstarted:
        driver.release(unstarted)
    for reservation in running:
        _failed_attempt(driver, registry, settings, reservation, item)
    # a started job no longer held was finished by the child itself just before it
    # died (acked or retried, the report lost): an attempt all the same (--max counts it)
    return item.job_id is not None


def _failed_attempt(driver: Driver, registry: Registry, settings: Settings,
                    reservation: Reservation, item: Settlement) -> None:
    bound = log.bind(job_id=reservation.id, queue=reservation.queue,
                     attempt=reservation.attempts, duration_s=item.duration_s)
    try:
        payload = decode_payload(reservation.payload)
        cls = registry.get(payload["job"])
    except ChappyError as exc:
        # it cannot have run: the worker would have rejected it (no retries)
        driver.fail(reservation, f"{item.error}\n{exc}")
        bound.error("job_failed", error=item.error)
        return
    job = cls(payload.get("data") or {})
    job.job_id, job.attempts, job.payload = reservation.id, reservation.attempts, payload
    bound = bound.bind(job=cls.name)
    max_attempts = resolve_max_attempts(payload, cls, settings.max_attempts)
    if reservation.attempts >= max_attempts:
        if driver.fail(reservation, item.error):
            bound.error("job_failed", error=item.error)
        return
    delay_s = job_backoff_s(job, reservation.attempts)
    if driver.retry(reservation, time.time() + delay_s, item.error):
        bound.warning("job_retry", retry_in_s=delay_s, error=item.error)
