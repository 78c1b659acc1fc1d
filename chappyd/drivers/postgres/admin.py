"""What chappyctl reads and repairs on PostgreSQL, and what the master runs rarely:
the schema and its migrations, periodic ticks, heartbeats, pauses, stats, failed jobs
and the dashboard's listings.

None of this is on a worker's claim path; PostgresDriver (driver.py) builds on it and
owns the session these methods use.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence

import psycopg

from chappyd.drivers.base import (
    TICK_RECORD_S,
    JobRecord,
    JobState,
    NewJob,
    QueueStats,
    TickOutcome,
    TickResult,
    WorkerInfo,
    listed_queues,
    live_since,
    prune_before,
)
from chappyd.drivers.sqlfile import load_queries
from chappyd.errors import SchemaMissing

Q = load_queries(__package__, "schema.sql")
MIGRATIONS: list[tuple[int, str]] = sorted(
    (int(name.removeprefix("migration_")), sql)
    for name, sql in Q.items() if re.fullmatch(r"migration_\d+", name)
)
LATEST = MIGRATIONS[-1][0]
_MAX_ID = 2**63 - 1


class PostgresAdmin:
    def take_adoption_note(self) -> str | None:
        note, self.adoption_note = self.adoption_note, None
        return note

    # -- schema -----------------------------------------------------------------
    def migrate(self) -> str | None:
        with self._session.use() as conn:
            note = self._migrate_on(conn) or self.adoption_note
        self.adoption_note = None
        return note

    def _auto_migrate(self, conn: psycopg.Connection) -> None:
        self.adoption_note = self._migrate_on(conn) or self.adoption_note

    def _migrate_on(self, conn: psycopg.Connection) -> str | None:
        """Apply missing migrations, first adopting a queue table made by Chappy.php's
        migration; a one-line note when it adopted one. The common case (up to date)
        is one query without a lock; otherwise an advisory lock makes concurrent
        callers take turns, and each re-reads what the previous one applied."""
        try:
            applied = {row[0] for row in conn.execute(Q["applied_migrations"])}
        except psycopg.errors.UndefinedTable:
            applied = set()
        if LATEST in applied:
            return None
        note = None
        with conn.transaction():
            conn.execute(Q["migration_lock"])
            conn.execute(Q["migrations_table"])
            applied = {row[0] for row in conn.execute(Q["applied_migrations"])}
            adopt = not applied and conn.execute(Q["is_chappy_php_table"]).fetchone()[0]
            if adopt:
                conn.execute(Q["adopt_chappy_php"])
            for version, sql in MIGRATIONS:
                if version not in applied:
                    conn.execute(sql)
                    conn.execute(Q["record_migration"], {"version": version})
            if adopt:
                ready, delayed, failed = conn.execute(Q["adopted_counts"]).fetchone()
                note = (f"adopted Chappy.php's queue table in {self.description}: {ready} "
                        f"ready, {delayed} delayed and {failed} failed jobs kept")
        return note

    def schema_sql(self) -> str:
        parts = [f"-- chappyd schema for PostgreSQL, migrations 1 to {LATEST}. Idempotent: "
                 "applying it again, or\n-- over a schema migrate() built, changes nothing.",
                 Q["adopt_chappy_php"], Q["migrations_table"] + ";"]
        for version, sql in MIGRATIONS:
            parts.append(sql)
            parts.append(Q["record_migration"].replace("%(version)s", str(version)) + ";")
        return "\n\n".join(parts) + "\n"

    # -- periodic jobs ----------------------------------------------------------
    def enqueue_tick(self, queue: str, job_name: str, tick: int, job: NewJob,
                     skip_if_waiting: bool = True) -> TickResult:
        # one transaction: the tick's row and its job exist together or not at all;
        # the schedule's row lock makes concurrent masters take turns
        params = {"job": job_name, "tick": tick, "queue": queue}
        with self._session.use() as conn, conn.transaction():
            if self._session.async_commit:
                conn.execute("SET LOCAL synchronous_commit = on")  # as push_many
            conn.execute(Q["tick_lock"], params)
            if conn.execute(Q["tick_claim"], params).fetchone() is None:
                return TickResult(TickOutcome.DUPLICATE)
            conn.execute(Q["tick_prune"], {**params, "before": tick - TICK_RECORD_S})
            if skip_if_waiting and conn.execute(Q["tick_waiting"], params).fetchone():
                return TickResult(TickOutcome.SKIPPED)
            row = conn.execute(Q["tick_insert"], {
                **params, "payload": job.payload,
                "available_at": float(job.available_at)}).fetchone()
        if row is None:  # its unique key is held by an earlier run
            return TickResult(TickOutcome.SKIPPED)
        return TickResult(TickOutcome.ENQUEUED, str(row[0]))

    def last_ticks(self, jobs: Mapping[str, str]) -> dict[str, int]:
        if not jobs:
            return {}
        try:
            with self._session.use() as conn:
                rows = conn.execute(Q["last_ticks"], {"jobs": list(jobs)}).fetchall()
        except SchemaMissing:
            return {}
        return {job: int(tick) for job, tick in rows}

    # -- heartbeats and pauses ----------------------------------------------------
    def heartbeat(self, info: WorkerInfo) -> None:
        with self._session.use() as conn:
            conn.execute(Q["heartbeat"], {
                "host": info.host, "pid": info.pid, "queues": list(info.queues),
                "workers": info.workers, "busy": info.busy, "jobs_done": info.jobs_done,
                "started_at": info.started_at, "last_seen": info.last_seen,
            })
            conn.execute(Q["prune_workers"], {"since": prune_before(time.time())})

    def remove_worker(self, host: str, pid: int) -> None:
        with self._session.use() as conn:
            conn.execute(Q["remove_worker"], {"host": host, "pid": pid})

    def workers(self) -> list[WorkerInfo]:
        with self._session.use() as conn:
            rows = conn.execute(Q["workers"], {"since": live_since(time.time())})
            return [
                WorkerInfo(r[0], r[1], tuple(r[2]), r[3], r[4], r[5], r[6], r[7])
                for r in rows
            ]

    def set_paused(self, queue: str, paused: bool) -> None:
        with self._session.use() as conn:
            conn.execute(Q["pause" if paused else "resume"], {"queue": queue})

    def paused_queues(self) -> set[str]:
        with self._session.use() as conn:
            return {row[0] for row in conn.execute(Q["paused_queues"])}

    # -- inspection and repair --------------------------------------------------
    def stats(self) -> list[QueueStats]:
        with self._session.use() as conn:
            rows = conn.execute(Q["stats"]).fetchall()
            paused = {row[0] for row in conn.execute(Q["paused_queues"])}
        by_queue = {
            r[0]: QueueStats(r[0], r[1], r[2], r[3], r[4], r[0] in paused,
                             None if r[5] is None else max(0.0, r[5]), r[6])
            for r in rows
        }
        return listed_queues(by_queue, paused, self.workers())

    def has_work(self, queues: Sequence[str]) -> bool:
        with self._session.use() as conn, self._session.without_jit(conn):
            return bool(conn.execute(Q["has_work"], {"queues": sorted(set(queues))})
                        .fetchone()[0])

    def get(self, job_id: str) -> JobRecord | None:
        ids = _ids([job_id])
        if not ids:
            return None
        with self._session.use() as conn:
            row = conn.execute(Q["get"], {"id": ids[0]}).fetchone()
        return None if row is None else _record(row)

    def failed(self, queue: str | None = None, limit: int = 100) -> list[JobRecord]:
        with self._session.use() as conn:
            rows = conn.execute(Q["failed"], {"queue": queue, "limit": limit}).fetchall()
        return [_record(row) for row in rows]

    def retry_failed(self, job_ids: Sequence[str] | None, queue: str | None = None) -> int:
        ids = None if job_ids is None else _ids(job_ids)
        return self._back_to_waiting("retry_failed", {"ids": ids, "queue": queue})

    def forget(self, job_ids: Sequence[str]) -> int:
        with self._session.use() as conn:
            return conn.execute(Q["forget"], {"ids": _ids(job_ids)}).rowcount

    def flush(self, queue: str | None = None) -> int:
        with self._session.use() as conn:
            return conn.execute(Q["flush"], {"queue": queue}).rowcount

    def clear(self, queue: str) -> int:
        with self._session.use() as conn:
            return conn.execute(Q["clear"], {"queue": queue}).rowcount

    # -- listing (the dashboard) --------------------------------------------------------
    def jobs(self, state: JobState, queue: str | None = None, job: str | None = None,
             limit: int = 50, offset: int = 0) -> list[JobRecord]:
        sql = _listing_sql("jobs", JobState(state))
        with self._session.use() as conn:
            rows = conn.execute(sql, {"queue": queue, "job": _job_pattern(job),
                                      "limit": limit, "offset": offset}).fetchall()
        return [_record(row) for row in rows]

    def count_jobs(self, state: JobState, queue: str | None = None,
                   job: str | None = None) -> int:
        sql = _listing_sql("count_jobs", JobState(state))
        with self._session.use() as conn:
            row = conn.execute(sql, {"queue": queue, "job": _job_pattern(job)}).fetchone()
        return int(row[0])


#: Each listed state's condition and its newest-first order (see Driver.jobs).
_WAITING = "reserved_at IS NULL AND failed_at IS NULL"
_STATE_SQL = {
    JobState.READY: (f"{_WAITING} AND available_at::float8 <= t.now",
                     "available_at::float8 DESC, id DESC"),
    JobState.DELAYED: (f"{_WAITING} AND available_at::float8 > t.now",
                       "available_at::float8 DESC, id DESC"),
    JobState.RESERVED: ("reserved_at IS NOT NULL AND failed_at IS NULL",
                        "reserved_at DESC, id DESC"),
    JobState.FAILED: ("failed_at IS NOT NULL", "failed_at DESC, id DESC"),
}


def _listing_sql(name: str, state: JobState) -> str:
    where, order = _STATE_SQL[state]
    return Q[name].format(state=where, order=order, label=f"'{state.value}'")


def _job_pattern(job: str | None) -> str | None:
    """A regular expression finding `"job": <name>` in a payload's JSON text."""
    if job is None:
        return None
    return r'"job"\s*:\s*' + re.escape(json.dumps(job, ensure_ascii=False))


def _ids(job_ids: Sequence[str]) -> list[int]:
    """Ids as bigints; text that is no id matches nothing (ids are strings outside)."""
    return [int(i) for i in job_ids if i.isdigit() and int(i) <= _MAX_ID]


def _record(row: tuple) -> JobRecord:
    job_id, queue, payload, attempts, state, available_at, reserved_at, failed_at, exc, \
        created = row
    return JobRecord(str(job_id), queue, payload, attempts, JobState(state), available_at,
                     reserved_at, failed_at, exc, created)
