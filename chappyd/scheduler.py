"""The master's side of periodic jobs: enqueue each due tick of the scheduled classes.

Every master whose queues include a scheduled job's queue runs one Scheduler; there is
no leader. Two masters enqueueing the same tick is harmless by design: the backend
refuses the second enqueue of a (job name, tick) atomically (`Driver.enqueue_tick`),
so a tick is enqueued exactly once whether one master or ten run, and losing a master
(SIGKILL, a deploy, a network cut) loses no tick while another one runs.

On its first run a Scheduler reads each schedule's last enqueued tick from the backend
and catches up on the ticks missed meanwhile by the class's `catchup` policy; after
that it enqueues ticks as they fall due.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from chappyd.config import Settings
from chappyd.drivers.base import Driver, NewJob, TickOutcome
from chappyd.errors import ConfigError
from chappyd.jobs import Job, Registry
from chappyd.payloads import encode_payload
from chappyd.schedules import (
    MAX_CATCHUP_TICKS,
    Schedule,
    ScheduleError,
    tick_id,
    validate_schedule_attrs,
)

log = structlog.get_logger("chappyd.scheduler")

#: The master looks again at least this often, so that a wall-clock jump is noticed.
MAX_WAIT_S = 60.0
#: Wake this long after a tick: the wall clock has surely passed it by then.
WAKE_MARGIN_S = 0.005
#: After a failed run (backend away), try again this soon (the link backs off itself).
RETRY_S = 0.25


@dataclass(frozen=True, slots=True)
class ScheduledJob:
    """A registered Job class with a valid schedule."""

    cls: type[Job]
    schedule: Schedule
    catchup: str
    data: dict[str, Any]

    @property
    def name(self) -> str:
        return self.cls.name

    @property
    def queue(self) -> str:
        return self.cls.queue


def scheduled_jobs(registry: Registry, default_timezone: str) -> list[ScheduledJob]:
    """The registry's classes that have a `schedule`, by name. A bad schedule, timezone,
    catchup or schedule_data is a ConfigError naming the class (exit 78, before any
    fork)."""
    found = []
    for name in registry.names():
        cls = registry.get(name)
        if cls.schedule is None:
            continue
        timezone = default_timezone if cls.timezone is None else cls.timezone
        try:
            schedule = validate_schedule_attrs(cls.schedule, timezone, cls.catchup,
                                               cls.schedule_data)
        except ScheduleError as exc:
            raise ConfigError(f"{cls.__module__}.{cls.__qualname__}", None, "CHAPPY_JOBS",
                              str(exc)) from None
        found.append(ScheduledJob(cls, schedule, str(cls.catchup), dict(cls.schedule_data)))
    return found


def run_payload(job: ScheduledJob, at_s: int, max_attempts: int) -> NewJob:
    """The job of one run for `at_s` (unix s): available then, `scheduled_for` it."""
    instance = job.cls(dict(job.data), max_attempts=job.cls.tries or max_attempts)
    payload = {**instance.to_payload(), "available_at": at_s, "scheduled_for": at_s}
    return NewJob(encode_payload(payload), float(at_s))


def run_now(driver: Driver, job: ScheduledJob, max_attempts: int) -> str:
    """Push one run of `job` for now and return its id. A run, not a tick: it is pushed
    as any job, so the schedule's last run stays where it was."""
    new_job = run_payload(job, int(time.time()), max_attempts)
    (job_id,) = driver.push_many(job.queue, [new_job])
    return job_id


@dataclass(slots=True)
class _Entry:
    job: ScheduledJob
    #: every tick up to this one is dealt with; None until the first run caught up
    handled: datetime | None = field(default=None)


class Scheduler:
    """Enqueues the due ticks of the scheduled jobs of one master's queues."""

    def __init__(self, jobs: Sequence[ScheduledJob], max_attempts: int) -> None:
        self.entries = [_Entry(job) for job in jobs]
        self.max_attempts = max_attempts

    @classmethod
    def for_master(cls, registry: Registry, settings: Settings) -> Scheduler:
        jobs = scheduled_jobs(registry, settings.timezone)
        return cls([j for j in jobs if j.queue in settings.queues], settings.max_attempts)

    def __bool__(self) -> bool:
        return bool(self.entries)

    def run_due(self, driver: Driver, now: datetime) -> datetime | None:
        """Enqueue every tick due at `now` (on the first run: the catch-up); returns
        when the next tick falls due (None without schedules). BackendUnavailable
        propagates; what was enqueued before it stays done and is not repeated."""
        fresh = {e.job.name: e.job.queue for e in self.entries if e.handled is None}
        if fresh:
            last = driver.last_ticks(fresh)
            for entry in self.entries:
                if entry.handled is None:
                    self._catch_up(driver, entry, last.get(entry.job.name), now)
        for entry in self.entries:
            self._run_entry(driver, entry, now)
        return min((e.job.schedule.next_tick(e.handled) for e in self.entries
                    if e.handled is not None), default=None)

    @staticmethod
    def wait_s(next_due: datetime | None, now: datetime) -> float:
        """Seconds the master may wait before the next `run_due`."""
        if next_due is None:
            return RETRY_S
        due_in_s = (next_due - now).total_seconds() + WAKE_MARGIN_S
        return min(MAX_WAIT_S, max(0.0, due_in_s))

    def _catch_up(self, driver: Driver, entry: _Entry, last_s: int | None,
                  now: datetime) -> None:
        """Downtime: the ticks after the backend's last one, by the catchup policy. A
        schedule never enqueued before starts at its next tick."""
        job = entry.job
        last = None if last_s is None else datetime.fromtimestamp(last_s, UTC)
        missed = job.schedule.missed_ticks(last, now, job.catchup)  # type: ignore[arg-type]
        # "all" means all: its ticks are not skipped for waiting behind one another
        for tick in missed:
            self._enqueue(driver, job, tick, skip_if_waiting=job.catchup != "all")
        entry.handled = now
        if missed:
            log.info("schedule_caught_up", job=job.name, policy=job.catchup,
                     ticks=len(missed), last_tick=last and last.isoformat(),
                     newest_tick=missed[-1].isoformat())

    def _run_entry(self, driver: Driver, entry: _Entry, now: datetime) -> None:
        assert entry.handled is not None
        job = entry.job
        due = job.schedule.ticks_between(entry.handled, now, MAX_CATCHUP_TICKS + 1)
        if not due:
            return
        if len(due) > 1:
            # behind (a backend outage, a stalled loop): like a restart, but a running
            # master's "none" still takes the newest tick
            policy = "all" if job.catchup == "all" else "latest"
            log.warning("schedule_behind", job=job.name, due=len(due), policy=policy)
            newest = due[-1]
            due = job.schedule.missed_ticks(entry.handled, now, policy)  # type: ignore[arg-type]
            for tick in due:
                self._enqueue(driver, job, tick, skip_if_waiting=policy != "all")
            entry.handled = newest
            return
        self._enqueue(driver, job, due[0], skip_if_waiting=True)
        entry.handled = due[0]

    def _enqueue(self, driver: Driver, job: ScheduledJob, tick: datetime,
                 skip_if_waiting: bool) -> None:
        tick_s = tick_id(tick)
        try:
            new_job = run_payload(job, tick_s, self.max_attempts)
        except Exception as exc:  # the class's own to_payload(): a bug of the job, not ours
            log.error("schedule_payload_failed", job=job.name, tick=tick.isoformat(),
                      error=f"{type(exc).__name__}: {exc}")
            return
        result = driver.enqueue_tick(job.queue, job.name, tick_s, new_job, skip_if_waiting)
        fields = dict(job=job.name, queue=job.queue, tick=tick.isoformat())
        if result.outcome is TickOutcome.ENQUEUED:
            late_s = (datetime.now(UTC) - tick) / timedelta(seconds=1)
            log.info("schedule_enqueued", **fields, job_id=result.job_id,
                     late_s=round(late_s, 3))
        elif result.outcome is TickOutcome.SKIPPED:
            log.info("schedule_skipped", **fields,
                     reason="the previous run of this schedule is still waiting")
        else:
            log.debug("schedule_tick_taken", **fields)
