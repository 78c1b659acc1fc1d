"""The embedded SQLite driver: one file, WAL mode, claims inside BEGIN IMMEDIATE.

SQLite has no notifications, so idle workers watch ``PRAGMA data_version`` (which
moves when another connection commits) every few milliseconds: a cheap read of the
WAL index in shared memory, no disk I/O, and pick-up within that interval.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from chappyd.config import Settings
from chappyd.drivers.base import (
    ExistingId,
    JobRecord,
    NewJob,
    QueueStats,
    Reservation,
    WorkerInfo,
    job_state,
    listed_queues,
    live_since,
    prune_before,
)
from chappyd.drivers.sqlfile import load_queries
from chappyd.errors import BackendUnavailable, SchemaMissing

Q = load_queries(__package__, "schema.sql")
#: How often an idle worker looks for a commit by another process: often right after
#: it ran out of work (jobs tend to come in bursts), then less often (idle CPU).
WAKE_POLL_BUSY_S = 0.001
WAKE_POLL_IDLE_S = 0.005
BUSY_WINDOW_S = 0.5
BUSY_TIMEOUT_MS = 10_000


class SqliteDriver:
    kind = "sqlite"
    prefetch = 1  # a claim is a local write: batching buys little and costs duplicates

    def __init__(self, settings: Settings) -> None:
        self.path = settings.sqlite_path()
        self.auto_migrate = settings.auto_migrate
        self.description = settings.backend_description
        self._conn: sqlite3.Connection | None = None
        self._pid = os.getpid()
        self._last_work = 0.0  # monotonic time of the last reserve that found a job

    # -- connection -------------------------------------------------------------
    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():
            # a connection inherited over fork() must never be used (DESIGN §3)
            self._conn = self._connect()
            self._pid = os.getpid()
        return self._conn

    def _connect(self) -> sqlite3.Connection:
        try:
            if str(self.path) != ":memory:":
                self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                str(self.path), isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000,
                check_same_thread=False,
            )
            # a producer may store bytes that are not UTF-8: the payload must still load
            # (and then fail as InvalidPayload) instead of breaking every reservation
            conn.text_factory = _decode_text
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            # NORMAL in WAL mode survives a crash of any process; only a power loss can
            # roll back the last commits.
            conn.execute("PRAGMA synchronous = NORMAL")
            if self.auto_migrate:
                _apply_schema(conn)
        except (sqlite3.Error, OSError) as exc:
            raise BackendUnavailable(self.description, str(exc)) from exc
        return conn

    @contextmanager
    def _guard(self) -> Iterator[sqlite3.Connection]:
        try:
            yield self.conn
        except sqlite3.Error as exc:
            if str(exc).startswith("no such table"):
                raise SchemaMissing(self.description, str(exc)) from exc
            raise BackendUnavailable(self.description, str(exc)) from exc

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taking the lock up front, so that readers never have
        to upgrade (and deadlock) half-way."""
        with self._guard() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def persistence_warning(self) -> str | None:
        return None  # every committed job is on disk

    def close(self) -> None:
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None

    # -- schema -----------------------------------------------------------------
    def migrate(self) -> None:
        with self._guard() as conn:
            _apply_schema(conn)

    def schema_sql(self) -> str:
        return Q["schema"] + "\n\n" + Q["unique_limits_schema"] + "\n"

    # -- producers --------------------------------------------------------------
    def push_many(self, queue: str, jobs: Sequence[NewJob]) -> list[str]:
        now = time.time()
        with self._write() as conn:
            return [self._insert(conn, queue, job, now) for job in jobs]

    def _insert(self, conn: sqlite3.Connection, queue: str, job: NewJob, now: float) -> str:
        """One row; a unique key another job holds inserts nothing and returns that
        job's id. A later copy in the same batch finds the first: rows go one by one."""
        limit = job.limit
        params = {"queue": queue, "payload": job.payload, "available_at": job.available_at,
                  "now": now, "unique_key": job.unique_key, "unique_until": job.unique_until,
                  "limit_key": limit.key if limit else None,
                  "limit_concurrency": limit.concurrency if limit else None,
                  "limit_rate": limit.rate if limit else None,
                  "limit_window_s": limit.window_s if limit else None}
        row = conn.execute(Q["insert"], params).fetchone()
        if row is not None:
            return str(row[0])
        (holder,) = conn.execute(Q["insert_holder"], params).fetchone()
        return ExistingId(holder)

    # -- workers ----------------------------------------------------------------
    def reserve(
        self, queues: Sequence[str], owner: str, lease_s: float, limit: int = 1
    ) -> list[Reservation]:
        now = time.time()
        taken: list[Reservation] = []
        with self._write() as conn:
            paused = {row[0] for row in conn.execute(Q["paused_queues"])}
            for queue in queues:
                if queue in paused:
                    continue
                params = {"queue": queue, "owner": owner, "lease_s": lease_s, "now": now}
                while len(taken) < limit:
                    row = conn.execute(Q["reserve"], params).fetchone()
                    if row is None:
                        break
                    if row[8] is not None:  # a rate: this start counts in its window
                        limited = {"limit_key": row[7], "now": now, "window_s": row[9]}
                        conn.execute(Q["prune_starts"], limited)
                        conn.execute(Q["record_start"], limited)
                    taken.append(Reservation(str(row[0]), row[1], row[2], row[3], row[4],
                                             row[5]))
                if len(taken) >= limit:
                    break
        if taken:
            self._last_work = time.monotonic()
        return taken

    def wait(self, queues: Sequence[str], timeout_s: float) -> None:
        with self._guard() as conn:
            (due,) = conn.execute(
                Q["next_available_at"], {"queues": json.dumps(list(queues))}
            ).fetchone()
            deadline = time.monotonic() + timeout_s
            if due is not None:
                deadline = min(deadline, time.monotonic() + max(0.0, due - time.time()))
            (version,) = conn.execute("PRAGMA data_version").fetchone()
            busy_until = self._last_work + BUSY_WINDOW_S
            while (now := time.monotonic()) < deadline:
                poll_s = WAKE_POLL_BUSY_S if now < busy_until else WAKE_POLL_IDLE_S
                time.sleep(min(poll_s, max(0.0, deadline - now)))
                if conn.execute("PRAGMA data_version").fetchone()[0] != version:
                    return

    def ack(self, reservation: Reservation) -> bool:
        with self._guard() as conn:
            cursor = conn.execute(Q["ack"], {"id": reservation.id, "token": reservation.token})
            return cursor.rowcount == 1

    def retry(self, reservation: Reservation, available_at: float, error: str) -> bool:
        return self._finish("retry", reservation, error=error, available_at=available_at)

    def fail(self, reservation: Reservation, error: str) -> bool:
        return self._finish("fail", reservation, error=error)

    def _finish(self, query: str, reservation: Reservation, **params: object) -> bool:
        with self._guard() as conn:
            cursor = conn.execute(Q[query], {
                "id": reservation.id, "token": reservation.token, "now": time.time(), **params,
            })
            return cursor.rowcount == 1

    def release(self, reservations: Sequence[Reservation]) -> int:
        now = time.time()
        with self._write() as conn:
            return sum(
                conn.execute(Q["release"], {"id": r.id, "token": r.token, "now": now}).rowcount
                for r in reservations
            )

    # -- the master -------------------------------------------------------------
    def extend_leases(self, owners: Sequence[str], lease_s: float) -> int:
        now = time.time()
        with self._write() as conn:
            return sum(
                conn.execute(Q["extend_lease"],
                             {"owner": owner, "lease_s": lease_s, "now": now}).rowcount
                for owner in owners
            )

    def held_by(self, owner: str) -> list[Reservation]:
        with self._guard() as conn:
            rows = conn.execute(Q["held_by"], {"owner": owner}).fetchall()
        return [Reservation(str(r[0]), r[1], r[2], r[3], r[4], r[5]) for r in rows]

    def release_owner(self, owner: str) -> int:
        with self._guard() as conn:
            return conn.execute(Q["release_owner"], {"owner": owner, "now": time.time()}).rowcount

    def expire_leases(self) -> int:
        with self._guard() as conn:
            return conn.execute(Q["expire_leases"], {"now": time.time()}).rowcount

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


def _apply_schema(conn: sqlite3.Connection) -> None:
    """The idempotent schema, plus the columns a table made by an older chappyd lacks
    (added under the write lock, re-checked there: every child may run this at once)."""
    conn.executescript(Q["schema"])
    wanted = [line.split() for line in Q["unique_limits_columns"].splitlines()
              if line and not line.startswith("--")]
    if _missing_columns(conn, wanted):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for name, kind in _missing_columns(conn, wanted):
                conn.execute(f"ALTER TABLE queue ADD COLUMN {name} {kind}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    conn.executescript(Q["unique_limits_schema"])


def _missing_columns(conn: sqlite3.Connection, wanted: list[list[str]]) -> list[list[str]]:
    have = {row[1] for row in conn.execute("PRAGMA table_info(queue)")}
    return [column for column in wanted if column[0] not in have]


def _decode_text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def _record(row: tuple, now: float) -> JobRecord:
    job_id, queue, payload, attempts, available_at, reserved_at, failed_at, exc, created = row
    state = job_state(failed_at is not None, reserved_at is not None, available_at, now)
    return JobRecord(str(job_id), queue, payload, attempts, state, available_at, reserved_at,
                     failed_at, exc, created)

