"""The PostgreSQL driver (psycopg 3.1+): claims with FOR UPDATE SKIP LOCKED, wakes idle
workers with LISTEN/NOTIFY, one statement per state transition.

Each statement runs in autocommit, so every transition is one atomic round trip and a
process killed between two calls leaves nothing half-done. The SQL lives in
schema.sql beside it; the connection's life (reconnects, errors, fork) in session.py.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence

import psycopg

from chappyd.config import Settings
from chappyd.drivers.base import (
    ExistingId,
    JobRecord,
    JobState,
    NewJob,
    QueueStats,
    Reservation,
    WorkerInfo,
    first_of_each_key,
    listed_queues,
    live_since,
    prune_before,
    spread_ids,
)
from chappyd.drivers.postgres.session import CHANNEL, PgSession
from chappyd.drivers.sqlfile import load_queries

Q = load_queries(__package__, "schema.sql")
MIGRATIONS: list[tuple[int, str]] = sorted(
    (int(name.removeprefix("migration_")), sql)
    for name, sql in Q.items() if re.fullmatch(r"migration_\d+", name)
)
LATEST = MIGRATIONS[-1][0]
#: An idle wait() re-reads the next due time this often even without a notification,
#: in case one was missed (e.g. a pooler that drops LISTEN). One index probe.
FALLBACK_POLL_S = 1.0
#: Wake this long after a delayed job's due time, so the claim's now() has passed it.
DUE_MARGIN_S = 0.001
_MAX_ID = 2**63 - 1
#: How often a statement bringing jobs back to waiting is run when it loses a race
#: for a unique key (see _back_to_waiting); each run sees what the previous one lost to.
UNIQUE_RACE_RUNS = 3
#: How often a worker re-reads which queues have limited jobs (see _limited_queues).
LIMITED_REFRESH_S = 1.0
#: Idle workers vacuum the queue table past this many dead rows, checking this often.
TIDY_DEAD_ROWS = 10_000
TIDY_INTERVAL_S = 10.0
#: Claim batches: start small, hold at most about this much work ahead, cap the size.
PREFETCH_START = 4
PREFETCH_BUDGET_S = 0.020
PREFETCH_MAX = 32


class PostgresDriver:
    kind = "postgres"

    def __init__(self, settings: Settings) -> None:
        self._batches = _BatchSizer()
        self._tidy_at = 0.0
        self._limited: set[str] = set()
        self._limited_at = 0.0
        self.description = settings.backend_description
        self.auto_migrate = settings.auto_migrate
        self._session = PgSession(
            settings.database_url, self.description,
            on_connect=self._migrate_on if settings.auto_migrate else None,
        )

    def persistence_warning(self) -> str | None:
        return None  # every committed job is on disk

    def close(self) -> None:
        self._session.close()

    @property
    def prefetch(self) -> int:
        """How many jobs the worker should reserve at once: adapts to job length."""
        return self._batches.size

    @prefetch.setter
    def prefetch(self, size: int) -> None:
        """Pin the batch size (benchmarks compare sizes this way)."""
        self._batches.pin(size)

    # -- schema -----------------------------------------------------------------
    def migrate(self) -> None:
        with self._session.use() as conn:
            self._migrate_on(conn)

    def _migrate_on(self, conn: psycopg.Connection) -> None:
        """Apply missing migrations. The common case (up to date) is one query without
        a lock; otherwise an advisory lock makes concurrent callers take turns, and
        each re-reads what the previous one applied."""
        try:
            applied = {row[0] for row in conn.execute(Q["applied_migrations"])}
        except psycopg.errors.UndefinedTable:
            applied = set()
        if LATEST in applied:
            return
        with conn.transaction():
            conn.execute(Q["migration_lock"])
            conn.execute(Q["migrations_table"])
            applied = {row[0] for row in conn.execute(Q["applied_migrations"])}
            for version, sql in MIGRATIONS:
                if version not in applied:
                    conn.execute(sql)
                    conn.execute(Q["record_migration"], {"version": version})

    def schema_sql(self) -> str:
        parts = [f"-- chappyd schema for PostgreSQL, migrations 1 to {LATEST}. Idempotent: "
                 "applying it again, or\n-- over a schema migrate() built, changes nothing.",
                 Q["migrations_table"] + ";"]
        for version, sql in MIGRATIONS:
            parts.append(sql)
            parts.append(Q["record_migration"].replace("%(version)s", str(version)) + ";")
        return "\n\n".join(parts) + "\n"

    # -- producers --------------------------------------------------------------
    def push_many(self, queue: str, jobs: Sequence[NewJob]) -> list[str]:
        if not jobs:
            return []
        full = any(job.unique_key is not None or job.limit is not None for job in jobs)
        batch, where = first_of_each_key(jobs) if full else (list(jobs), [])
        rows = ([_full_row(job) for job in batch] if full
                else [[job.payload, job.available_at] for job in batch])
        params = [queue.encode(),
                  json.dumps(rows, ensure_ascii=False, allow_nan=False).encode()]
        name = "insert_full" if full else "insert"
        with self._session.use() as conn:
            if self._session.async_commit:
                # this connection claims and acks without flushing: a push must not
                # share that, it would be a job lost on a server crash
                with conn.transaction():
                    conn.execute("SET LOCAL synchronous_commit = on")
                    ids = self._session.query_value(conn, f"chappyd_{name}", Q[name], params)
            else:
                ids = self._session.query_value(conn, f"chappyd_{name}", Q[name], params)
        if not full:
            return [str(job_id) for job_id in json.loads(ids or "[]")]
        return spread_ids(_ids_in_batch_order(batch, json.loads(ids)), where)

    # -- workers ----------------------------------------------------------------
    def reserve(
        self, queues: Sequence[str], owner: str, lease_s: float, limit: int = 1
    ) -> list[Reservation]:
        params = [json.dumps(list(queues)).encode(), owner.encode(),
                  repr(float(lease_s)).encode(), str(max(1, limit)).encode()]
        with self._session.use() as conn:
            self._session.set_async_commit(conn)
            # a busy worker never waits: drop what LISTEN brought meanwhile, unread
            self._session.discard_notifies(conn)
            limited = sorted(set(queues) & self._limited_queues(conn))
            if limited:
                with conn.transaction():
                    conn.execute(Q["lock_limited"], {"queues": limited})
                    batch = self._session.query_value(
                        conn, "chappyd_reserve", Q["reserve"], [*params, b"t"])
            else:
                batch = self._session.query_value(
                    conn, "chappyd_reserve", Q["reserve"], [*params, b"f"])
        taken = [] if batch is None else json.loads(batch)
        self._batches.claimed(len(taken))
        return [Reservation(str(job_id), queue, payload, attempts, token, reserved_at)
                for job_id, queue, payload, attempts, token, reserved_at in taken]

    def _limited_queues(self, conn: psycopg.Connection) -> set[str]:
        """The queues that ever had a limited job, re-read at most every
        LIMITED_REFRESH_S. Until a worker sees a queue there, its claims skip that
        queue's limited jobs (never run them unchecked): they wait that long at most."""
        now = time.monotonic()
        if now >= self._limited_at:
            self._limited = {row[0] for row in conn.execute(Q["limited_queues"])}
            self._limited_at = now + LIMITED_REFRESH_S
        return self._limited

    def wait(self, queues: Sequence[str], timeout_s: float) -> None:
        deadline = time.monotonic() + max(0.0, timeout_s)
        wanted = set(queues)
        with self._session.use() as conn:
            self._session.listen(conn)
            self._tidy(conn)
            while time.monotonic() < deadline:
                if self._wait_round(conn, wanted, deadline):
                    return

    def _tidy(self, conn: psycopg.Connection) -> None:
        """An idle worker vacuums the queue table when autovacuum lags behind.

        Every job leaves dead entries in the queue's indexes (its claim, its delete), and
        until a vacuum removes them each claim steps over all of them: measured, a claim
        takes 0.25 ms on a clean table and 1.1 ms after 100,000 jobs, while autovacuum
        looks at a table once a minute at best (autovacuum_naptime). An idle worker has
        time to spare: at most every TIDY_INTERVAL_S it reads the dead-row count (a
        statistics lookup) and past TIDY_DEAD_ROWS runs VACUUM (SKIP_LOCKED), a no-op
        while another worker's vacuum runs. A role that does not own the table skips it.
        """
        now = time.monotonic()
        if now < self._tidy_at:
            return
        self._tidy_at = now + TIDY_INTERVAL_S
        row = conn.execute(Q["dead_rows"]).fetchone()
        if row is None:  # no statistics yet
            return
        if not row[1]:
            self._tidy_at = float("inf")  # not the owner: VACUUM would only warn
        elif row[0] >= TIDY_DEAD_ROWS:
            conn.execute(Q["vacuum"])

    def _wait_round(self, conn: psycopg.Connection, wanted: set[str], deadline: float) -> bool:
        """Read the next due time, then sleep on the socket until it, a notification of
        a ready job, the deadline, or the fallback poll. True: stop waiting."""
        # Notifications already received come from commits this query sees anyway;
        # those arriving with its result may be newer than its snapshot: keep them.
        self._session.discard_notifies(conn)
        due, server_now = conn.execute(Q["next_due"], {"queues": sorted(wanted)}).fetchone()
        started = time.monotonic()
        clock = _ServerClock(server_now, started)
        wake_at = deadline
        if due is not None:
            if due <= server_now:
                return True
            wake_at = min(wake_at, clock.monotonic_at(due))
        poll_at = started + FALLBACK_POLL_S
        notes = list(self._session.notes)
        while True:
            for channel, payload in notes:
                due_at = _due_of(channel, payload, wanted)
                if due_at is not None:
                    if due_at <= clock.now():
                        return True
                    wake_at = min(wake_at, clock.monotonic_at(due_at))
            now = time.monotonic()
            if now >= wake_at:
                return True
            if now >= poll_at:
                return False
            if self._session.wait_readable(conn, min(wake_at, poll_at) - now):
                notes = self._session.read_notifies(conn)
            else:
                notes = []

    def ack(self, reservation: Reservation) -> bool:
        with self._session.use() as conn:
            deleted = self._session.execute_prepared(
                conn, "chappyd_ack", Q["ack"],
                [reservation.id.encode(), reservation.token.encode()])
        return deleted == 1

    def retry(self, reservation: Reservation, available_at: float, error: str) -> bool:
        return self._finish("retry", reservation, error=error, available_at=available_at)

    def fail(self, reservation: Reservation, error: str) -> bool:
        return self._finish("fail", reservation, error=error)

    def _finish(self, query: str, reservation: Reservation, **params: object) -> bool:
        return self._back_to_waiting(query, {
            "id": int(reservation.id), "token": reservation.token, **params}) == 1

    def _back_to_waiting(self, query: str, params: dict[str, object] | None = None) -> int:
        """Run a statement that may bring rows back to waiting; returns its row count.
        Such a row keeps its unique key only when no other job holds it, but a copy
        pushed by a transaction still open is invisible to that check: the statement
        then fails with a unique violation, and its second run sees the copy."""
        with self._session.use() as conn:
            for attempt in range(UNIQUE_RACE_RUNS):
                try:
                    return conn.execute(Q[query], params).rowcount
                except psycopg.errors.UniqueViolation:
                    if attempt == UNIQUE_RACE_RUNS - 1:
                        raise
        raise AssertionError("unreachable")

    def release(self, reservations: Sequence[Reservation]) -> int:
        if not reservations:
            return 0
        return self._back_to_waiting("release", {
            "ids": [int(r.id) for r in reservations],
            "tokens": [r.token for r in reservations],
        })

    # -- the master -------------------------------------------------------------
    def extend_leases(self, owners: Sequence[str], lease_s: float) -> int:
        if not owners:
            return 0
        with self._session.use() as conn:
            return conn.execute(Q["extend_leases"], {
                "owners": list(owners), "lease_s": float(lease_s)}).rowcount

    def held_by(self, owner: str) -> list[Reservation]:
        with self._session.use() as conn:
            rows = conn.execute(Q["held_by"], {"owner": owner}).fetchall()
        return [Reservation(str(r[0]), r[1], r[2], r[3], r[4], r[5]) for r in rows]

    def release_owner(self, owner: str) -> int:
        return self._back_to_waiting("release_owner", {"owner": owner})

    def expire_leases(self) -> int:
        return self._back_to_waiting("expire_leases")

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


class _BatchSizer:
    """The claim batch size: as many jobs as take about PREFETCH_BUDGET_S to run.

    Batching pays for short jobs: a claim of 30 rows costs the worker and the server
    about what a claim of one does (measured: 200 us of worker CPU per no-op job at
    batch 1, 86 us at 30). For long jobs it would only hoard: jobs wait behind a long
    one in this child while another child idles, and a job of a higher-priority queue
    waits behind the batch. So the size follows the job time measured between claims,
    and stays 1 for jobs of PREFETCH_BUDGET_S or more.
    """

    def __init__(self) -> None:
        self.size = PREFETCH_START
        self._pinned = False
        self._since: float | None = None
        self._last = 0

    def pin(self, size: int) -> None:
        self.size, self._pinned = max(1, size), True

    def claimed(self, count: int) -> None:
        """Called at each claim; the jobs of the previous one have run meanwhile (the
        worker claims again only when its batch is done)."""
        now = time.monotonic()
        if not self._pinned and self._since is not None and self._last > 0:
            per_job_s = (now - self._since) / self._last
            wanted = int(PREFETCH_BUDGET_S / per_job_s) if per_job_s > 0 else PREFETCH_MAX
            self.size = max(1, min(PREFETCH_MAX, wanted))
        # a claim that found nothing is followed by a wait: no job time to learn from
        self._since, self._last = now, count


class _ServerClock:
    """The server's unix time, estimated from one reading and the monotonic clock:
    due times are compared with the clock the claim uses, not this host's."""

    def __init__(self, server_now: float, at_monotonic: float) -> None:
        self.server_now, self.at = server_now, at_monotonic

    def now(self) -> float:
        return self.server_now + (time.monotonic() - self.at)

    def monotonic_at(self, server_time: float) -> float:
        return self.at + (server_time - self.server_now) + DUE_MARGIN_S


def _due_of(channel: str, payload: str, wanted: set[str]) -> float | None:
    """The due time a notification announces for one of `wanted`, else None. A payload
    that does not parse wakes the worker (a spurious wake-up is allowed, a lost one not)."""
    if channel != CHANNEL:
        return None
    due, _, queue = payload.partition(" ")
    if queue not in wanted:
        return None
    try:
        return float(due)
    except ValueError:
        return 0.0


def _full_row(job: NewJob) -> list[object]:
    limit = job.limit
    if limit is None:
        return [job.payload, job.available_at, job.unique_key, job.unique_until]
    return [job.payload, job.available_at, job.unique_key, job.unique_until, limit.key,
            limit.concurrency, limit.rate, limit.window_s]


def _ids_in_batch_order(batch: Sequence[NewJob], rows: Sequence[list]) -> list[str]:
    """insert_unique's rows ([id, unique_key, existed], by id) in the order of `batch`:
    new rows took ascending ids in batch order; a holder is found by its key."""
    holders = {key: str(job_id) for job_id, key, existed in rows if existed}
    new_ids = iter(str(job_id) for job_id, _, existed in rows if not existed)
    return [ExistingId(holders[job.unique_key]) if job.unique_key in holders
            else next(new_ids) for job in batch]


def _ids(job_ids: Sequence[str]) -> list[int]:
    """Ids as bigints; text that is no id matches nothing (ids are strings outside)."""
    return [int(i) for i in job_ids if i.isdigit() and int(i) <= _MAX_ID]


def _record(row: tuple) -> JobRecord:
    job_id, queue, payload, attempts, state, available_at, reserved_at, failed_at, exc, \
        created = row
    return JobRecord(str(job_id), queue, payload, attempts, JobState(state), available_at,
                     reserved_at, failed_at, exc, created)
