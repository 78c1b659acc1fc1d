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
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import psycopg
import structlog

from chappyd.config import Settings, redact_url
from chappyd.drivers.base import (
    TICK_RECORD_S,
    ExistingId,
    JobRecord,
    JobState,
    NewJob,
    QueueStats,
    Reservation,
    TickOutcome,
    TickResult,
    WorkerInfo,
    first_of_each_key,
    listed_queues,
    live_since,
    prune_before,
    spread_ids,
)
from chappyd.drivers.postgres import caller
from chappyd.drivers.postgres.session import CHANNEL, PgSession
from chappyd.drivers.sqlfile import load_queries
from chappyd.errors import SchemaMissing

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
#: Behind a pooler without CHAPPY_LISTEN_URL there is no LISTEN: idle workers poll.
POOLED_POLL_S = 0.25
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

log = structlog.get_logger("chappyd.postgres")


class PostgresDriver:
    kind = "postgres"

    def __init__(self, settings: Settings) -> None:
        self._batches = _BatchSizer()
        self._tidy_at = 0.0
        self._limited: set[str] = set()
        self._limited_at = 0.0
        self.description = settings.backend_description
        self.auto_migrate = settings.auto_migrate
        #: what auto-migrate's adoption of a Chappy.php table did, until migrate() or
        #: the master's link reports it (drivers do not log: chappyctl's stdout is data)
        self.adoption_note: str | None = None
        #: the queue table as the server names it, for checking callers' connections
        self._identity: caller.Identity | None = None
        self._session = PgSession(
            settings.database_url, self.description,
            on_connect=self._auto_migrate if settings.auto_migrate else None,
            # with a LISTEN URL, DATABASE_URL is the pooler; without, find out
            pooled=True if settings.listen_url else None,
        )
        #: LISTEN's own direct connection when DATABASE_URL is a pooler.
        self._listener = PgSession(
            settings.listen_url, f"PostgreSQL at {redact_url(settings.listen_url)}",
        ) if settings.listen_url else None
        self._warned_polling = False

    def take_adoption_note(self) -> str | None:
        note, self.adoption_note = self.adoption_note, None
        return note

    def persistence_warning(self) -> str | None:
        return None  # every committed job is on disk

    def close(self) -> None:
        self._session.close()
        if self._listener is not None:
            self._listener.close()

    @property
    def prefetch(self) -> int:
        """How many jobs the worker should reserve at once: adapts to job length."""
        return self._batches.size

    @prefetch.setter
    def prefetch(self, size: int) -> None:
        """Pin the batch size (benchmarks compare sizes this way)."""
        self._batches.pin(size)

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

    # -- producers --------------------------------------------------------------
    def push_many(
        self, queue: str, jobs: Sequence[NewJob], conn: object | None = None
    ) -> list[str]:
        """With `conn` (the caller's psycopg 3 or psycopg2 connection), the rows are
        written by that connection inside its open transaction; see caller.py."""
        if conn is not None:
            self._check_caller(conn)
        if not jobs:
            return []
        full = any(job.unique_key is not None or job.limit is not None for job in jobs)
        batch, where = first_of_each_key(jobs) if full else (list(jobs), [])
        rows = ([_full_row(job) for job in batch] if full
                else [[job.payload, job.available_at] for job in batch])
        name = "insert_full" if full else "insert"
        # one insert for both paths, so that unique keys and limits hold through conn=
        params = [queue, json.dumps(rows, ensure_ascii=False, allow_nan=False)]
        if conn is not None:
            (ids,) = caller.run_on(conn)(Q[name], params)
        else:
            ids = self._insert_own(name, [param.encode() for param in params])
        if not full:
            return _job_ids(ids)
        return spread_ids(_ids_in_batch_order(batch, _decoded(ids) or []), where)

    def _insert_own(self, name: str, params: list[bytes]) -> object:
        with self._session.use() as own:
            if self._session.async_commit:
                # this connection claims and acks without flushing: a push must not
                # share that, it would be a job lost on a server crash
                with own.transaction():
                    own.execute("SET LOCAL synchronous_commit = on")
                    return self._session.query_value(own, f"chappyd_{name}", Q[name], params)
            return self._session.query_value(own, f"chappyd_{name}", Q[name], params)

    def _check_caller(self, conn: object) -> None:
        """ValueError unless `conn` is open and reaches this queue's own table."""
        caller.check_usable(conn)
        run = caller.run_on(conn)
        for fresh in (False, True):  # once more after a server restart or a migration
            if fresh or self._identity is None:
                # first: opening chappyd's connection may create the schema
                with self._session.use() as own:
                    self._identity = caller.identity_of(
                        lambda sql, params: own.execute(sql, params).fetchone())
            problem = caller.mismatch(caller.identity_of(run), self._identity,
                                      self.description)
            if problem is None:
                return
        raise ValueError(problem)

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
            with self._session.worker_transaction(conn), self._limit_lock(conn, limited):
                batch = self._session.query_value(
                    conn, "chappyd_reserve", Q["reserve"],
                    [*params, b"t" if limited else b"f"])
        self._drain_listener()
        taken = [] if batch is None else json.loads(batch)
        self._batches.claimed(len(taken))
        return [Reservation(str(job_id), queue, payload, attempts, token, reserved_at)
                for job_id, queue, payload, attempts, token, reserved_at in taken]

    def _drain_listener(self) -> None:
        """Read and drop what a busy worker's LISTEN connection received, so that
        the server never blocks sending to it (one non-blocking read)."""
        listener = self._listener
        if listener is None or not listener.is_open():
            return
        with listener.use() as conn:
            listener.read_notifies(conn)
            listener.discard_notifies(conn)

    @contextmanager
    def _limit_lock(self, conn: psycopg.Connection, limited: list[str]) -> Iterator[None]:
        """Around a claim of queues with limited jobs: their queue_limited rows locked
        until it commits (inside the pooled worker transaction if there is one)."""
        if not limited:
            yield
            return
        with conn.transaction():
            conn.execute(Q["lock_limited"], {"queues": limited})
            yield
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
        session = self._listener or self._session
        with session.use() as conn:
            if session.pooled:
                self._poll(conn, wanted, deadline)
                return
            session.listen(conn)
            self._tidy(conn)
            while time.monotonic() < deadline:
                if self._wait_round(session, conn, wanted, deadline):
                    return

    def _poll(self, conn: psycopg.Connection, wanted: set[str], deadline: float) -> None:
        """Wait without LISTEN (a pooler and no CHAPPY_LISTEN_URL): re-read the next
        due time every POOLED_POLL_S."""
        if not self._warned_polling:
            self._warned_polling = True
            log.warning("listen_unavailable", backend=self.description, poll_s=POOLED_POLL_S,
                        reason="DATABASE_URL goes through a pooler or proxy and "
                               "CHAPPY_LISTEN_URL is not set: idle workers poll")
        queues = sorted(wanted)
        while True:
            due, server_now = conn.execute(Q["next_due"], {"queues": queues}).fetchone()
            now = time.monotonic()
            if (due is not None and due <= server_now) or now >= deadline:
                return
            pause = min(POOLED_POLL_S, deadline - now)
            if due is not None:
                pause = min(pause, due - server_now + DUE_MARGIN_S)
            time.sleep(pause)

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

    def _wait_round(self, session: PgSession, conn: psycopg.Connection, wanted: set[str],
                    deadline: float) -> bool:
        """Read the next due time, then sleep on the socket until it, a notification of
        a ready job, the deadline, or the fallback poll. True: stop waiting."""
        # Notifications already received come from commits this query sees anyway;
        # those arriving with its result may be newer than its snapshot: keep them.
        session.discard_notifies(conn)
        due, server_now = conn.execute(Q["next_due"], {"queues": sorted(wanted)}).fetchone()
        started = time.monotonic()
        clock = _ServerClock(server_now, started)
        wake_at = deadline
        if due is not None:
            if due <= server_now:
                return True
            wake_at = min(wake_at, clock.monotonic_at(due))
        poll_at = started + FALLBACK_POLL_S
        notes = list(session.notes)
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
            if session.wait_readable(conn, min(wake_at, poll_at) - now):
                notes = session.read_notifies(conn)
            else:
                notes = []

    def ack(self, reservation: Reservation) -> bool:
        with self._session.use() as conn, self._session.worker_transaction(conn):
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


def _job_ids(value: object) -> list[str]:
    """The insert's json_agg of ids (see _decoded), None when nothing was inserted."""
    return [str(job_id) for job_id in _decoded(value) or []]


def _decoded(value: object) -> object:
    """A json_agg result as text through libpq, or already decoded by a caller's psycopg."""
    if value is None:
        return None
    return json.loads(value) if isinstance(value, str | bytes) else value


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
