"""The dashboard's pages: each reads through the driver interface and returns the
template to render with its context, which is also the page's JSON document."""

from __future__ import annotations

import math
import time
from typing import Any

from chappyd.cli.ctl.render import failed_document, job_document
from chappyd.cli.ctl.status import queue_document, worker_document
from chappyd.config import Settings, validate_queue_name
from chappyd.drivers.base import Driver, JobState
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


def schedules(settings: Settings) -> Page:
    """Periodic jobs from the registered Job classes' `schedule` attribute. A stub
    until the scheduler lands: it shows what is declared, not next/last runs."""
    from chappyd.jobs import Registry

    registry, problem = Registry(), None
    try:
        registry.load(settings.jobs)
    except Exception as exc:  # a broken job module must not take the page down
        problem = f"{type(exc).__name__}: {exc}"
    rows = []
    for name in registry.names():
        cls = registry.get(name)
        schedule = getattr(cls, "schedule", None)
        if schedule:
            rows.append({"job": name, "queue": cls.queue, "schedule": str(schedule),
                         "next_run": None, "last_run": None})
    return "schedules.html", {"schedules": rows, "problem": problem}


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
