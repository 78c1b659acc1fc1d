"""The PostgreSQL driver (psycopg 3.1+): claims with FOR UPDATE SKIP LOCKED, wakes idle
workers with LISTEN/NOTIFY, one statement per state transition.

Each statement runs in autocommit, so every transition is one atomic round trip and a
process killed between two calls leaves nothing half-done. The SQL lives in
schema.sql beside it; the connection's life (reconnects, errors, fork) in session.py.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

import psycopg
import structlog

from chappyd.config import Settings, redact_url
from chappyd.drivers.base import (
    ExistingId,
    NewJob,
    Reservation,
    first_of_each_key,
    spread_ids,
)
from chappyd.drivers.batching import BatchedClaims, BatchSizer
from chappyd.drivers.postgres import caller, claims
from chappyd.drivers.postgres.admin import (  # the schema names stay importable from here
    LATEST,  # noqa: F401
    MIGRATIONS,  # noqa: F401
    PostgresAdmin,
    Q,
)
from chappyd.drivers.postgres.session import CHANNEL, PgSession

#: An idle wait() re-reads the next due time this often even without a notification,
#: in case one was missed (e.g. a pooler that drops LISTEN). One index probe.
FALLBACK_POLL_S = 1.0
#: Wake this long after a delayed job's due time, so the claim's now() has passed it.
DUE_MARGIN_S = 0.001
#: Behind a pooler without CHAPPY_LISTEN_URL there is no LISTEN: idle workers poll.
POOLED_POLL_S = 0.25
#: How often a statement bringing jobs back to waiting is run when it loses a race
#: for a unique key (see _back_to_waiting); each run sees what the previous one lost to.
UNIQUE_RACE_RUNS = 3
#: How often a worker re-reads which queues have limited jobs (see _limited_queues).
LIMITED_REFRESH_S = 1.0
#: Idle workers vacuum the queue table past this many dead rows, checking this often.
TIDY_DEAD_ROWS = 10_000
TIDY_INTERVAL_S = 10.0

log = structlog.get_logger("chappyd.postgres")


class PostgresDriver(BatchedClaims, PostgresAdmin):
    kind = "postgres"

    def __init__(self, settings: Settings) -> None:
        self._batches = BatchSizer()
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

    def persistence_warning(self) -> str | None:
        return None  # every committed job is on disk

    def close(self) -> None:
        self._session.close()
        if self._listener is not None:
            self._listener.close()

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

    # -- workers ----------------------------------------------------------------
    def reserve(
        self, queues: Sequence[str], owner: str, lease_s: float, limit: int = 1
    ) -> list[Reservation]:
        return self._claim((), queues, owner, lease_s, limit)[1]

    def ack_and_reserve(
        self, acks: Sequence[Reservation], queues: Sequence[str], owner: str,
        lease_s: float, limit: int = 1,
    ) -> tuple[int, list[Reservation]]:
        if limit < 1:
            return self.ack_many(acks), []
        return self._claim(acks, queues, owner, lease_s, limit)

    def _claim(self, acks: Sequence[Reservation], queues: Sequence[str], owner: str,
               lease_s: float, limit: int) -> tuple[int, list[Reservation]]:
        params = claims.reserve_params(queues, owner, lease_s, limit)
        with self._session.use() as conn:
            self._session.set_async_commit(conn)
            # a busy worker never waits: drop what LISTEN brought meanwhile, unread
            self._session.discard_notifies(conn)
            limited = sorted(set(queues) & self._limited_queues(conn))
            acked, batch = claims.claim(self._session, conn, acks, params, limited)
        if self._listener is not None:
            self._listener.drain()  # the server must never block sending to it
        taken = claims.reservations_of(batch)
        self._batches.claimed(len(taken))
        return acked, taken

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

    def ack_many(self, reservations: Sequence[Reservation]) -> int:
        if not reservations:
            return 0
        with self._session.use() as conn:
            self._session.set_async_commit(conn)
            return claims.ack_many(self._session, conn, reservations)

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
                    with self._session.without_jit(conn):
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
        with self._session.use() as conn, self._session.without_jit(conn):
            return conn.execute(Q["extend_leases"], {
                "owners": list(owners), "lease_s": float(lease_s)}).rowcount

    def held_by(self, owner: str) -> list[Reservation]:
        with self._session.use() as conn, self._session.without_jit(conn):
            rows = conn.execute(Q["held_by"], {"owner": owner}).fetchall()
        return [Reservation(str(r[0]), r[1], r[2], r[3], r[4], r[5]) for r in rows]

    def release_owner(self, owner: str) -> int:
        return self._back_to_waiting("release_owner", {"owner": owner})

    def expire_leases(self) -> int:
        return self._back_to_waiting("expire_leases")



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
