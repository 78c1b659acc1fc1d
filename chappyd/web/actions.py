"""The dashboard's changes, POST only, each one driver verb as `chappyctl` runs it:
retry and forget (`retry ID`, `forget ID`), retry all and flush (`retry --all
[--queue Q]`, `flush [--queue Q]`), pause, resume and clear (`clear Q --yes`), and
a schedule's run now (`schedule:test JOB`)."""

from __future__ import annotations

from urllib.parse import quote

from chappyd.config import Settings
from chappyd.drivers.base import Driver, JobState
from chappyd.scheduler import run_now
from chappyd.web.http import HttpError, Request
from chappyd.web.pages import checked_id, checked_queue, scheduled

#: (what was done, how many jobs, where a browser goes when it came from nowhere)
Outcome = tuple[str, int, str]


def job_action(driver: Driver, request: Request, job_id: str, verb: str) -> Outcome:
    job_id = checked_id(job_id)
    record = driver.get(job_id)
    if record is None:
        raise HttpError(404, f"no job {job_id}")
    if record.state != JobState.FAILED:
        raise HttpError(409, f"job {job_id} is {record.state}, not failed: only failed "
                             "jobs can be retried or forgotten")
    count = driver.retry_failed([job_id]) if verb == "retry" else driver.forget([job_id])
    return ("retried" if verb == "retry" else "forgot"), count, (
        f"/jobs/{job_id}" if verb == "retry" else "/failed")


def queue_action(driver: Driver, request: Request, queue: str, verb: str) -> Outcome:
    queue = checked_queue(queue)
    back = f"/queues/{quote(queue, safe='')}"
    if verb == "clear":
        return "cleared", driver.clear(queue), back
    driver.set_paused(queue, verb == "pause")
    return ("paused" if verb == "pause" else "resumed"), 0, back


def failed_action(driver: Driver, request: Request, verb: str) -> Outcome:
    raw = request.param("queue")
    queue = checked_queue(raw) if raw else None
    if verb == "retry-all":
        return "retried", driver.retry_failed(None, queue), "/failed"
    return "flushed", driver.flush(queue), "/failed"


def schedule_action(driver: Driver, settings: Settings, job: str) -> Outcome:
    """One run now, not a tick: the schedule's last run stays where it was."""
    jobs, problem = scheduled(settings)
    found = next((j for j in jobs if j.name == job), None)
    if found is None:
        raise HttpError(404, problem or f"no scheduled job {job!r}")
    run_now(driver, found, settings.max_attempts)
    return "pushed", 1, "/schedules"
