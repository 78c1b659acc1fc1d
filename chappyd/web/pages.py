"""The dashboard's pages: each reads through the driver interface and returns the
template to render with its context, which is also the page's JSON document."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Any

from chappyd.cli.ctl.render import failed_document, job_document
from chappyd.cli.ctl.schedule import schedule_document
from chappyd.cli.ctl.status import queue_document, worker_document
from chappyd.config import Settings, validate_queue_name
from chappyd.drivers.base import Driver, JobState
from chappyd.jobs import load_registry
from chappyd.scheduler import ScheduledJob, scheduled_jobs
from chappyd.web.http import HttpError, Request

PAGE_SIZE = 50
MAX_PAGE = 1_000_000
MAX_ID = 2**63 - 1
MAX_JOB_NAME = 255
Page = tuple[str, dict[str, Any]]


def overview(driver: Driver, request: Request) -> Page:
    stats, workers = driver.stats(), driver.workers()
    hosts: dict[str, list[dict[str, Any]]] = {}
    for w in workers:
        hosts.setdefault(w.host, []).append(worker_document(w))
    return "overview.html", {
        "queues": [queue_document(s) for s in stats],
        "hosts": [{"host": host, "masters": len(rows),
                   "workers": sum(r["workers"] for r in rows),
                   "busy": sum(r["busy"] for r in rows)} for host, rows in hosts.items()],
        "totals": {key: sum(getattr(s, key) for s in stats)
                   for key in ("ready", "delayed", "reserved", "failed")},
    }


def queue_page(driver: Driver, request: Request, queue: str) -> Page:
    queue = checked_queue(queue)
    state = request.query.get("state", "ready")
    if state not in (JobState.READY, JobState.DELAYED, JobState.RESERVED):
        raise HttpError(400, "state must be ready, delayed or reserved")
    stats = [queue_document(s) for s in driver.stats() if s.queue == queue]
    summary = stats[0] if stats else {
        "queue": queue, "ready": 0, "delayed": 0, "reserved": 0, "failed": 0,
        "paused": queue in driver.paused_queues(), "oldest_ready_age_s": None}
    listing = paged(request, driver.count_jobs(JobState(state), queue))
    records = driver.jobs(JobState(state), queue, limit=PAGE_SIZE, offset=listing["offset"])
    return "queue.html", {"queue": summary, "state": state, "pagination": listing,
                          "jobs": [job_document(r) for r in records]}


def failed(driver: Driver, request: Request) -> Page:
    queue = checked_queue(request.query["queue"]) if request.query.get("queue") else None
    job = request.query.get("job", "").strip() or None
    if job is not None and len(job) > MAX_JOB_NAME:
        raise HttpError(400, f"job: at most {MAX_JOB_NAME} characters")
    total = driver.count_jobs(JobState.FAILED, queue, job)
    listing = paged(request, total)
    records = driver.jobs(JobState.FAILED, queue, job, PAGE_SIZE, listing["offset"])
    queues = sorted(s.queue for s in driver.stats() if s.failed)
    return "failed.html", {"filter": {"queue": queue, "job": job}, "queues": queues,
                           "pagination": listing,
                           "jobs": [failed_document(r) for r in records]}


def job_page(driver: Driver, request: Request, job_id: str) -> Page:
    record = driver.get(checked_id(job_id))
    if record is None:
        raise HttpError(404, f"no job {job_id}")
    return "job.html", {"job": job_document(record)}


def workers(driver: Driver, request: Request) -> Page:
    now = time.time()
    rows = []
    for w in driver.workers():
        doc = worker_document(w)
        doc.update(idle=max(0, w.workers - w.busy), up_s=round(now - w.started_at, 1),
                   seen_s=round(now - w.last_seen, 1))
        rows.append(doc)
    return "workers.html", {"workers": rows}


def schedules(driver: Driver, settings: Settings) -> Page:
    """The periodic jobs of CHAPPY_JOBS with their next and last run, the same rows as
    `chappyctl schedule:list --json`."""
    jobs, problem = scheduled(settings)
    last = driver.last_ticks({job.name: job.queue for job in jobs}) if jobs else {}
    now = datetime.now(UTC)
    return "schedules.html", {
        "schedules": [schedule_document(job, now, last.get(job.name)) for job in jobs],
        "problem": problem}


def scheduled(settings: Settings) -> tuple[list[ScheduledJob], str | None]:
    """The scheduled classes, and why none could be read if the job modules or a
    schedule are broken: that must not take the dashboard down."""
    try:
        return scheduled_jobs(load_registry(settings), settings.timezone), None
    except Exception as exc:
        return [], f"{type(exc).__name__}: {exc}"


# ---------------------------------------------------------------- checks


def checked_queue(raw: str) -> str:
    try:
        return validate_queue_name(raw)
    except ValueError as exc:
        raise HttpError(400, f"queue {raw!r}: {exc}") from None


def checked_id(raw: str) -> str:
    if not (raw.isascii() and raw.isdigit()) or int(raw) > MAX_ID:
        raise HttpError(404, f"no job {raw!r}: ids are whole numbers")
    return raw


def paged(request: Request, total: int) -> dict[str, Any]:
    raw = request.query.get("page", "1")
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_PAGE:
        raise HttpError(400, f"page must be a whole number from 1 to {MAX_PAGE}")
    page = int(raw)
    pages = max(1, math.ceil(total / PAGE_SIZE))
    return {"page": page, "pages": pages, "total": total, "per_page": PAGE_SIZE,
                  "offset": (page - 1) * PAGE_SIZE}
