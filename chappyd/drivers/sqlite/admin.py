"""What chappyctl reads and repairs on SQLite: heartbeats, pauses, stats, failed jobs
and the dashboard's listings.

None of this is on a worker's claim path; SqliteDriver (driver.py) builds on it and
owns the connection and the write guard these methods use.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

from chappyd.drivers.base import (
    JobRecord,
    JobState,
    QueueStats,
    WorkerInfo,
    job_state,
    listed_queues,
    live_since,
    prune_before,
)
from chappyd.drivers.sqlfile import load_queries

Q = load_queries(__package__, "schema.sql")


class SqliteAdmin:
    # -- heartbeats and pauses ----------------------------------------------------
    def heartbeat(self, info: WorkerInfo) -> None:
        with self._write() as conn:
            conn.execute(Q["heartbeat"], {
                "host": info.host, "pid": info.pid, "queues": json.dumps(list(info.queues)),
                "workers": info.workers, "busy": info.busy, "jobs_done": info.jobs_done,
                "started_at": info.started_at, "last_seen": info.last_seen,
            })
            conn.execute(Q["prune_workers"], {"since": prune_before(time.time())})

    def remove_worker(self, host: str, pid: int) -> None:
        with self._guard() as conn:
            conn.execute(Q["remove_worker"], {"host": host, "pid": pid})

    def workers(self) -> list[WorkerInfo]:
        with self._guard() as conn:
            rows = conn.execute(Q["workers"], {"since": live_since(time.time())})
            return [
                WorkerInfo(r[0], r[1], tuple(json.loads(r[2])), r[3], r[4], r[5], r[6], r[7])
                for r in rows
            ]

    def set_paused(self, queue: str, paused: bool) -> None:
        with self._guard() as conn:
            conn.execute(Q["pause" if paused else "resume"], {"queue": queue, "now": time.time()})

    def paused_queues(self) -> set[str]:
        with self._guard() as conn:
            return {row[0] for row in conn.execute(Q["paused_queues"])}

    # -- inspection and repair --------------------------------------------------
    def stats(self) -> list[QueueStats]:
        now = time.time()
        with self._guard() as conn:
            rows = conn.execute(Q["stats"], {"now": now}).fetchall()
        paused = self.paused_queues()
        by_queue = {
            r[0]: QueueStats(r[0], r[1], r[2], r[3], r[4], r[0] in paused,
                             None if r[5] is None else max(0.0, now - r[5]), r[6])
            for r in rows
        }
        return listed_queues(by_queue, paused, self.workers())

    def has_work(self, queues: Sequence[str]) -> bool:
        with self._guard() as conn:
            return bool(conn.execute(Q["has_work"], {"queues": json.dumps(sorted(set(queues))),
                                                     "now": time.time()}).fetchone()[0])

    def get(self, job_id: str) -> JobRecord | None:
        if not job_id.isdigit():
            return None
        with self._guard() as conn:
            row = conn.execute(Q["get"], {"id": int(job_id)}).fetchone()
        return None if row is None else _record(row, time.time())

    def failed(self, queue: str | None = None, limit: int = 100) -> list[JobRecord]:
        now = time.time()
        with self._guard() as conn:
            rows = conn.execute(Q["failed"], {"queue": queue, "limit": limit}).fetchall()
        return [_record(row, now) for row in rows]

    def retry_failed(self, job_ids: Sequence[str] | None, queue: str | None = None) -> int:
        ids = None if job_ids is None else json.dumps([int(i) for i in job_ids if i.isdigit()])
        with self._guard() as conn:
            return conn.execute(
                Q["retry_failed"], {"ids": ids, "queue": queue, "now": time.time()}
            ).rowcount

    def forget(self, job_ids: Sequence[str]) -> int:
        ids = json.dumps([int(i) for i in job_ids if i.isdigit()])
        with self._guard() as conn:
            return conn.execute(Q["forget"], {"ids": ids}).rowcount

    def flush(self, queue: str | None = None) -> int:
        with self._guard() as conn:
            return conn.execute(Q["flush"], {"queue": queue}).rowcount

    def clear(self, queue: str) -> int:
        with self._guard() as conn:
            return conn.execute(Q["clear"], {"queue": queue}).rowcount

    # -- listing (the dashboard) --------------------------------------------------------
    def jobs(self, state: JobState, queue: str | None = None, job: str | None = None,
             limit: int = 50, offset: int = 0) -> list[JobRecord]:
        where, order = _STATE_SQL[JobState(state)]
        now = time.time()
        with self._guard() as conn:
            rows = conn.execute(Q["jobs"].format(state=where, order=order), {
                "queue": queue, "job": job, "now": now, "limit": limit, "offset": offset,
            }).fetchall()
        return [_record(row, now) for row in rows]

    def count_jobs(self, state: JobState, queue: str | None = None,
                   job: str | None = None) -> int:
        where, _ = _STATE_SQL[JobState(state)]
        with self._guard() as conn:
            (count,) = conn.execute(Q["count_jobs"].format(state=where, order=""), {
                "queue": queue, "job": job, "now": time.time(),
            }).fetchone()
        return int(count)


#: Each listed state's condition and its newest-first order (see Driver.jobs).
_WAITING = "reserved_at IS NULL AND failed_at IS NULL"
_STATE_SQL = {
    JobState.READY: (f"{_WAITING} AND available_at <= :now", "available_at DESC, id DESC"),
    JobState.DELAYED: (f"{_WAITING} AND available_at > :now", "available_at DESC, id DESC"),
    JobState.RESERVED: ("reserved_at IS NOT NULL AND failed_at IS NULL",
                        "reserved_at DESC, id DESC"),
    JobState.FAILED: ("failed_at IS NOT NULL", "failed_at DESC, id DESC"),
}


def _record(row: tuple, now: float) -> JobRecord:
    job_id, queue, payload, attempts, available_at, reserved_at, failed_at, exc, created = row
    state = job_state(failed_at is not None, reserved_at is not None, available_at, now)
    return JobRecord(str(job_id), queue, payload, attempts, state, available_at, reserved_at,
                     failed_at, exc, created)
