"""What happens to the jobs of a child that is gone (docs/design.md §3, §7).

The master reaps a child, then settles what that child still holds, through the
driver alone: the job it was running is a failed attempt (backoff, or failed when
out of attempts) with `WorkerDied: ...` or `JobTimeout: ...` as its exception; jobs
it had reserved but not started go back with their attempt refunded. When the
daemon itself stops a child, everything it holds goes back refunded. Jobs it had
finished but not acked yet (daemon/unacked.py) are acked first, whatever the death.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

import structlog

from chappyd.attempts import fail_attempt, reserved_max_attempts
from chappyd.config import Settings
from chappyd.drivers.base import Driver, Reservation
from chappyd.errors import ChappyError
from chappyd.jobs import Registry
from chappyd.worker import Outcome

if TYPE_CHECKING:
    from chappyd.daemon.link import BackendLink

log = structlog.get_logger("chappyd.master")

#: settle()'s answer for a settlement that ended no started attempt (an idle child's).
NO_ATTEMPT = ""


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
    job_name: str = ""  # of job_id, as its STARTED report named it
    queue: str = ""
    #: (job id, token) of the jobs it had finished and not acked
    finished: tuple[tuple[str, str], ...] = ()


class Settlements:
    """Dead children's jobs waiting to be settled, in the order they died; kept (and
    retried on a later turn) while the backend is down."""

    def __init__(self) -> None:
        self._items: deque[Settlement] = deque()

    def __bool__(self) -> bool:
        return bool(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def add(self, item: Settlement) -> None:
        self._items.append(item)

    def clear(self) -> None:
        self._items.clear()

    def settle(self, link: BackendLink, registry: Registry, settings: Settings,
               ended_attempt: Callable[[Settlement, str], None]) -> None:
        """Settle what is pending, in order, until done or the backend is down;
        `ended_attempt(item, outcome)` for each that ended a started attempt."""
        while self._items:
            item = self._items[0]
            outcome = link.call(lambda d, item=item: settle(d, registry, settings, item))
            if outcome is None:
                return  # backend down: retried on a later turn, in order
            self._items.popleft()
            if outcome != NO_ATTEMPT:
                ended_attempt(item, outcome)


def settle(driver: Driver, registry: Registry, settings: Settings, item: Settlement) -> str:
    """Settle `item`; the outcome of the started attempt it ended, NO_ATTEMPT when it
    ended none. RETRIED or FAILED: the running job's failed attempt; RELEASED: a stop
    gave the running job back, attempt refunded (--max does not count it); STALE: the
    attempt ended, how is unknown. Raises BackendUnavailable (nothing half-done
    matters: every step is guarded by the reservation's token, so a retry of the
    whole settlement is safe)."""
    held = driver.held_by(item.owner) if item.finished or item.how is Settle.FAILED else []
    if item.finished:
        held = _ack_finished(driver, item.owner, held, set(item.finished))
    if item.how is Settle.REFUND:
        released = driver.release_owner(item.owner)
        if released:
            log.info("jobs_released", owner=item.owner, count=released)
        if any(job_id == item.job_id for job_id, _ in item.finished):
            return Outcome.STALE  # it had finished: acked above, not given back
        return Outcome.RELEASED if released and item.job_id is not None else NO_ATTEMPT
    running = [r for r in held if r.id == item.job_id]
    unstarted = [r for r in held if r.id != item.job_id]
    if unstarted:
        driver.release(unstarted)
    if running:
        return _failed_attempt(driver, registry, settings, running[0], item)
    # a started job no longer held was finished by the child itself just before it
    # died (acked or retried, the report lost): an attempt all the same (--max counts it)
    return Outcome.STALE if item.job_id is not None else NO_ATTEMPT


def _ack_finished(driver: Driver, owner: str, held: list[Reservation],
                  finished: set[tuple[str, str]]) -> list[Reservation]:
    """Ack the held jobs the child had finished; the rest of `held`."""
    done = [r for r in held if (r.id, r.token) in finished]
    if done:
        acked = driver.ack_many(done)
        log.info("finished_jobs_acked", owner=owner, count=acked)
    return [r for r in held if (r.id, r.token) not in finished]


def _failed_attempt(driver: Driver, registry: Registry, settings: Settings,
                    reservation: Reservation, item: Settlement) -> Outcome:
    bound = log.bind(job_id=reservation.id, queue=reservation.queue,
                     attempt=reservation.attempts, duration_s=item.duration_s)
    try:
        job = registry.job_for(reservation)
    except ChappyError as exc:
        # it cannot have run: the worker would have rejected it (no retries)
        stored = driver.fail(reservation, f"{item.error}\n{exc}")
        bound.error("job_failed", error=item.error)
        return Outcome.FAILED if stored else Outcome.STALE
    bound = bound.bind(job=type(job).name)
    max_attempts = reserved_max_attempts(job, settings.max_attempts)
    after = fail_attempt(driver, job, reservation, max_attempts, item.error)
    if not after.stored:
        return Outcome.STALE
    if after.action == "fail":
        bound.error("job_failed", error=item.error)
        return Outcome.FAILED
    bound.warning("job_retry", retry_in_s=after.retry_in_s, error=item.error)
    return Outcome.RETRIED
