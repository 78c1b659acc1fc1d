"""The master's Prometheus metrics: what children report, what the backend holds.

Everything lives in the master, so counters outlive the children that fed them
(recycling and crashes included). Label values are bounded: queue names, registered
job class names (at most MAX_JOB_LABELS of them), fixed outcome/state/reason words;
never a host, pid or job id, whose every new value would be a new series forever.
The HTTP side is in metrics_server.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from chappyd.drivers.base import QueueStats

OUTCOMES = ("done", "retried", "failed", "released")
QUEUE_STATES = ("ready", "delayed", "reserved", "failed")
WORKER_STATES = ("busy", "idle")
EXIT_REASONS = ("recycled", "memory", "crashed", "timeout")
#: Distinct job label values kept; later names count under OTHER_LABEL.
MAX_JOB_LABELS = 500
#: Distinct queue label values kept (stats() lists every queue in the backend).
MAX_QUEUE_LABELS = 500
OTHER_LABEL = "other"
#: Labelled series kept for quick lookup (job x queue x outcome); the rest are looked up.
MAX_CACHED = 4 * MAX_JOB_LABELS * len(OUTCOMES)
#: The job label of an attempt rejected before it named a registered class
#: (a payload that does not decode, or names no registered job).
UNREGISTERED_LABEL = "unregistered"
#: The backend is asked for queue depths at most this often.
DEPTHS_EVERY_S = 5.0
#: Jobs run from milliseconds to the 7-day timeout bound; beyond an hour the exact
#: bucket matters little.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                    30.0, 60.0, 300.0, 900.0, 3600.0, float("inf"))
WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
                900.0, 3600.0, 21600.0, 86400.0, float("inf"))


class BoundedLabels:
    """Keeps the first `limit` distinct values of a label; the rest become "other"."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._seen: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if len(self._seen) >= self.limit:
            return OTHER_LABEL
        self._seen.add(value)
        return value


class Metrics:
    """The master's metrics, in a registry of their own (not the library's global one,
    which would also export the master's process and GC collectors)."""

    def __init__(self, max_job_labels: int = MAX_JOB_LABELS,
                 max_queue_labels: int = MAX_QUEUE_LABELS) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._job_label = BoundedLabels(max_job_labels)
        self._queue_label = BoundedLabels(max_queue_labels)
        self._next_depths = 0.0
        # labelled children looked up once: labels() costs more than the update itself,
        # and the master makes two updates per job
        self._counted: dict[tuple[str, str, str], tuple[Any, Any]] = {}
        self._waits: dict[str, Any] = {}
        self._workers_now: tuple[int, int] | None = None
        self._depth_queues: set[str] = set()
        r = self.registry
        self.jobs = Counter("chappyd_jobs", "Finished job attempts by outcome.",
                            ["queue", "job", "outcome"], registry=r)
        self.duration = Histogram("chappyd_job_duration_seconds",
                                  "How long handle() ran, per attempt.", ["queue", "job"],
                                  buckets=DURATION_BUCKETS, registry=r)
        self.wait = Histogram("chappyd_job_wait_seconds",
                              "From a job's available time to the start of its first attempt.",
                              ["queue"], buckets=WAIT_BUCKETS, registry=r)
        self.queue_jobs = Gauge("chappyd_queue_jobs", "Jobs in the backend by state.",
                                ["queue", "state"], registry=r)
        self.oldest_ready = Gauge("chappyd_queue_oldest_ready_age_seconds",
                                  "Age of the oldest ready job (0 when none is ready).",
                                  ["queue"], registry=r)
        self.workers = Gauge("chappyd_workers", "This master's children by state.",
                             ["state"], registry=r)
        self.child_exits = Counter("chappyd_child_exits", "Children that ended, by reason.",
                                   ["reason"], registry=r)
        self.backend_up = Gauge("chappyd_backend_up",
                                "1 when the master's last backend call succeeded.", registry=r)
        for state in WORKER_STATES:
            self.workers.labels(state=state).set(0)
        for reason in EXIT_REASONS:
            self.child_exits.labels(reason=reason)  # zero from the start: rate() works
        self.backend_up.set(0)

    # -- what children report --------------------------------------------------------
    def job_started(self, queue: str, job: str, wait_s: float | None) -> None:
        """A child started an attempt; `wait_s` is None when unknown (a retry)."""
        if wait_s is None:
            return
        histogram = self._waits.get(queue)
        if histogram is None:
            histogram = self._waits[queue] = self.wait.labels(queue=self._queue_label(queue))
        histogram.observe(max(0.0, wait_s))

    def job_finished(self, queue: str, job: str | None, outcome: str,
                     duration_s: float | None) -> None:
        """An attempt ended. Outcomes outside OUTCOMES (a stale lease, an outcome the
        child could not record) are not counted: another holder or a later attempt
        reports that job."""
        if outcome not in OUTCOMES:
            return
        key = (queue, job or "", outcome)
        children = self._counted.get(key)
        if children is None:
            labels = {"queue": self._queue_label(queue),
                      "job": self._job_label(job) if job else UNREGISTERED_LABEL}
            # a released attempt was interrupted: its duration says nothing of the job
            timed = self.duration.labels(**labels) if outcome != "released" else None
            children = (self.jobs.labels(outcome=outcome, **labels), timed)
            if len(self._counted) < MAX_CACHED:  # names past the label cap are not kept
                self._counted[key] = children
        counter, histogram = children
        counter.inc()
        if duration_s is not None and histogram is not None:
            histogram.observe(max(0.0, duration_s))

    def child_exited(self, reason: str) -> None:
        if reason not in EXIT_REASONS:
            raise ValueError(f"unknown child exit reason {reason!r}")
        self.child_exits.labels(reason=reason).inc()

    # -- what the master knows -----------------------------------------------------------
    def set_workers(self, busy: int, idle: int) -> None:
        if self._workers_now == (busy, idle):
            return  # called every loop turn; most turns change nothing
        self._workers_now = (busy, idle)
        self.workers.labels(state="busy").set(busy)
        self.workers.labels(state="idle").set(idle)

    def set_backend_up(self, up: bool) -> None:
        self.backend_up.set(1 if up else 0)

    def depths_due(self, now: float) -> bool:
        """True at most every DEPTHS_EVERY_S (monotonic `now`): then the master calls
        driver.stats() and passes the result to set_depths(), or calls clear_depths()
        when the backend did not answer."""
        if now < self._next_depths:
            return False
        self._next_depths = now + DEPTHS_EVERY_S
        return True

    def set_depths(self, stats: Iterable[QueueStats]) -> None:
        """The backend's counts; a queue no longer listed loses its series."""
        seen: set[str] = set()
        for s in stats:
            queue = self._queue_label(s.queue)
            if queue == OTHER_LABEL:
                continue  # summing unrelated queues into one gauge would mislead
            seen.add(queue)
            for state in QUEUE_STATES:
                self.queue_jobs.labels(queue=queue, state=state).set(getattr(s, state))
            self.oldest_ready.labels(queue=queue).set(s.oldest_ready_age_s or 0.0)
        self._drop_depths(self._depth_queues - seen)
        self._depth_queues = seen

    def clear_depths(self) -> None:
        """No current counts (the backend is down): none is better than stale ones."""
        self._drop_depths(self._depth_queues)
        self._depth_queues = set()

    def _drop_depths(self, queues: Iterable[str]) -> None:
        for queue in queues:
            for state in QUEUE_STATES:
                self.queue_jobs.remove(queue, state)
            self.oldest_ready.remove(queue)

    def exposition(self) -> bytes:
        """The Prometheus text format of everything above."""
        return generate_latest(self.registry)
