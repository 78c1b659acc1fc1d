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
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from chappyd.config import Settings
from chappyd.drivers.base import (
    TICK_RECORD_S,
    ExistingId,
    NewJob,
    Reservation,
    TickOutcome,
    TickResult,
)
from chappyd.drivers.batching import BatchedClaims, BatchSizer
from chappyd.drivers.sqlite import opening
from chappyd.drivers.sqlite.admin import Q, SqliteAdmin
from chappyd.drivers.sqlite.migrate import SCHEMA_BLOCKS, apply_schema
from chappyd.errors import BackendUnavailable, BackendUnusable, SchemaMissing

#: How often an idle worker looks for a commit by another process: often right after
#: it ran out of work (jobs tend to come in bursts), then less often (idle CPU).
WAKE_POLL_BUSY_S = 0.001
WAKE_POLL_IDLE_S = 0.005
BUSY_WINDOW_S = 0.5
BUSY_TIMEOUT_MS = 10_000


class SqliteDriver(BatchedClaims, SqliteAdmin):
    kind = "sqlite"

    def __init__(self, settings: Settings, read_only: bool = False,
                 busy_timeout_s: float = BUSY_TIMEOUT_MS / 1000) -> None:
        self.path = settings.sqlite_path()
        self.auto_migrate = settings.auto_migrate and not read_only
        self.read_only = read_only
        self.busy_timeout_ms = int(busy_timeout_s * 1000)
        self.description = settings.backend_description
        self._conn: sqlite3.Connection | None = None
        self._pid = os.getpid()
        self._last_work = 0.0  # monotonic time of the last reserve that found a job
        # a claim is a write transaction: short jobs are claimed and acked in batches
        self._batches = BatchSizer()
        #: what auto-migrate's adoption of a Chappy.php table did, until migrate() or
        #: the master's link reports it (drivers do not log: chappyctl's stdout is data)
        self.adoption_note: str | None = None

    # -- connection -------------------------------------------------------------
    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():
            # a connection inherited over fork() must never be used (docs/design.md §4)
            self._conn = self._connect()
            self._pid = os.getpid()
        return self._conn

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = opening.connect(self.path, self.description, self.read_only,
                                       self.busy_timeout_ms / 1000)
            # a producer may store bytes that are not UTF-8: the payload must still load
            # (and then fail as InvalidPayload) instead of breaking every reservation
            conn.text_factory = _decode_text
            conn.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
            if self.read_only:
                return conn
            conn.execute("PRAGMA journal_mode = WAL")
            # NORMAL in WAL mode survives a crash of any process; only a power loss can
            # roll back the last commits.
            conn.execute("PRAGMA synchronous = NORMAL")
            if self.auto_migrate:
                self.adoption_note = apply_schema(conn, self.description)
        except sqlite3.Error as exc:
            if "readonly database" in str(exc):  # a file or directory we may not write
                raise BackendUnusable(self.description, f"{self.path}: {exc}") from exc
            raise self._classified(exc) from exc
        except OSError as exc:
            raise BackendUnavailable(self.description, str(exc)) from exc
        return conn

    @contextmanager
    def _guard(self) -> Iterator[sqlite3.Connection]:
        try:
            yield self.conn
        except sqlite3.Error as exc:
            raise self._classified(exc) from exc

    def _classified(self, exc: sqlite3.Error) -> Exception:
        """What an SQLite error means: no schema yet, a file that is not SQLite (no
        retry mends it), or a passing failure (a lock held too long, a full disk)."""
        if str(exc).startswith("no such table"):
            return SchemaMissing(self.description, str(exc))
        if "file is not a database" in str(exc):
            return BackendUnusable(self.description, f"{self.path} is not an SQLite database")
        return BackendUnavailable(self.description, str(exc))

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

    def take_adoption_note(self) -> str | None:
        note, self.adoption_note = self.adoption_note, None
        return note

    def persistence_warning(self) -> str | None:
        return None  # every committed job is on disk

    def close(self) -> None:
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None

    # -- schema -----------------------------------------------------------------
    def migrate(self) -> str | None:
        with self._guard() as conn:
            note = apply_schema(conn, self.description) or self.adoption_note
        self.adoption_note = None
        return note

    def schema_sql(self) -> str:
        return "\n\n".join(Q[name] for name in SCHEMA_BLOCKS) + "\n"

    # -- producers --------------------------------------------------------------
    def push_many(
        self, queue: str, jobs: Sequence[NewJob], conn: object | None = None
    ) -> list[str]:
        """With `conn` (the caller's connection to this file), the rows are written by it
        in its transaction, which the caller commits (idle workers see the commit)."""
        if conn is not None:
            return _insert(self._caller(conn), queue, jobs)
        with self._write() as own:
            return _insert(own, queue, jobs)

    def _caller(self, conn: object) -> sqlite3.Connection:
        """`conn`, checked: ValueError unless it is an open sqlite3 connection to this
        queue's file, with the schema in it."""
        if not isinstance(conn, sqlite3.Connection):
            kind = f"{type(conn).__module__}.{type(conn).__qualname__}"
            raise ValueError(f"conn= must be a sqlite3.Connection to the queue's file "
                             f"{self.path}, not {kind}")
        try:
            cursor = conn.cursor()
            cursor.row_factory = None
            files = {row[1]: row[2] for row in cursor.execute("PRAGMA database_list")}
            has_table = cursor.execute(Q["has_queue_table"]).fetchone() is not None
        except sqlite3.ProgrammingError as exc:  # closed, or another thread's
            raise ValueError(f"conn= cannot be used: {exc}") from exc
        theirs = files.get("main") or ":memory:"
        if theirs == ":memory:" or os.path.realpath(theirs) != os.path.realpath(self.path):
            raise ValueError(f"conn= is connected to {theirs}, the queue is in {self.path}")
        if not has_table and self.auto_migrate:
            self.migrate()  # on chappyd's own connection: the caller's stays untouched
            has_table = cursor.execute(Q["has_queue_table"]).fetchone() is not None
        if not has_table:
            raise ValueError(f"conn= reaches {theirs}, which has no chappyd queue table "
                             f"yet (run `chappyctl migrate`)")
        return conn

    # -- periodic jobs ----------------------------------------------------------
    def enqueue_tick(self, queue: str, job_name: str, tick: int, job: NewJob,
                     skip_if_waiting: bool = True) -> TickResult:
        # one BEGIN IMMEDIATE: the tick's row and its job exist together or not at all
        params = {"job": job_name, "tick": tick, "queue": queue}
        with self._write() as conn:
            if conn.execute(Q["tick_claim"], params).fetchone() is None:
                return TickResult(TickOutcome.DUPLICATE)
            conn.execute(Q["tick_prune"], {**params, "before": tick - TICK_RECORD_S})
            if skip_if_waiting and conn.execute(Q["tick_waiting"], params).fetchone():
                return TickResult(TickOutcome.SKIPPED)
            now = time.time()
            row = conn.execute(Q["insert"], _insert_params(queue, job, now)).fetchone()
            if row is None:  # its unique key is held by an earlier run
                return TickResult(TickOutcome.SKIPPED)
            (job_id,) = row
            conn.execute(Q["tick_enqueued"], {**params, "job_id": job_id})
        return TickResult(TickOutcome.ENQUEUED, str(job_id))

    def last_ticks(self, jobs: Mapping[str, str]) -> dict[str, int]:
        # a read-only connection of its own: looking must not create the file or schema
        if not jobs or not self.path.is_file():
            return {}
        try:
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True,
                                   timeout=BUSY_TIMEOUT_MS / 1000)
            try:
                rows = conn.execute(Q["last_ticks"], {"jobs": json.dumps(list(jobs))})
                return {job: int(tick) for job, tick in rows}
            finally:
                conn.close()
        except sqlite3.OperationalError as exc:
            if str(exc).startswith("no such table"):
                return {}
            raise BackendUnavailable(self.description, str(exc)) from exc
        except sqlite3.Error as exc:
            raise BackendUnavailable(self.description, str(exc)) from exc

    # -- workers ----------------------------------------------------------------
    def reserve(
        self, queues: Sequence[str], owner: str, lease_s: float, limit: int = 1
    ) -> list[Reservation]:
        now = time.time()
        with self._write() as conn:
            taken = _claim(conn, queues, owner, lease_s, limit, now)
        self._claimed(taken)
        return taken

    def _claimed(self, taken: list[Reservation]) -> None:
        self._batches.claimed(len(taken))
        if taken:
            self._last_work = time.monotonic()

    def wait(self, queues: Sequence[str], timeout_s: float) -> None:
        with self._guard() as conn:
            (due,) = conn.execute(
                Q["next_available_at"], {"queues": json.dumps(list(queues))}
            ).fetchone()
            deadline = time.monotonic() + timeout_s
            if isinstance(due, int | float):  # never arithmetic on what a producer wrote
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

    def ack_many(self, reservations: Sequence[Reservation]) -> int:
        if not reservations:
            return 0
        with self._write() as conn:
            return _delete_acked(conn, reservations)

    def ack_and_reserve(
        self, acks: Sequence[Reservation], queues: Sequence[str], owner: str,
        lease_s: float, limit: int = 1,
    ) -> tuple[int, list[Reservation]]:
        if not acks:
            return 0, (self.reserve(queues, owner, lease_s, limit) if limit >= 1 else [])
        now = time.time()
        # one BEGIN IMMEDIATE: the claim counts the limit slots the acks just freed
        with self._write() as conn:
            acked = _delete_acked(conn, acks)
            taken = _claim(conn, queues, owner, lease_s, limit, now) if limit >= 1 else []
        self._claimed(taken)
        return acked, taken

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


def _claim(conn: sqlite3.Connection, queues: Sequence[str], owner: str, lease_s: float,
           limit: int, now: float) -> list[Reservation]:
    """reserve() inside the caller's write transaction: `queues` in priority order,
    paused ones skipped, one row per statement so that each sees the limits as the
    one before left them."""
    taken: list[Reservation] = []
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
            taken.append(Reservation(str(row[0]), row[1], row[2], row[3], row[4], row[5]))
        if len(taken) >= limit:
            break
    return taken


def _delete_acked(conn: sqlite3.Connection, reservations: Sequence[Reservation]) -> int:
    """ack()'s delete for each reservation, inside the caller's write transaction; the
    rows hold the unique keys and count as running for limits, so deleting frees both."""
    rows = [{"id": r.id, "token": r.token} for r in reservations]
    return conn.executemany(Q["ack"], rows).rowcount


def _insert(conn: sqlite3.Connection, queue: str, jobs: Sequence[NewJob]) -> list[str]:
    """Every push's insert, on chappyd's connection or the caller's (whose row factory
    must not change what comes back). Row by row in one write transaction: a unique key
    another job holds inserts nothing and returns that job's id, and a later copy in
    the same batch finds the first."""
    now = time.time()
    cursor = conn.cursor()
    cursor.row_factory = None
    ids: list[str] = []
    for job in jobs:
        params = _insert_params(queue, job, now)
        row = cursor.execute(Q["insert"], params).fetchone()
        if row is not None:
            ids.append(str(row[0]))
        else:
            (holder,) = cursor.execute(Q["insert_holder"], params).fetchone()
            ids.append(ExistingId(holder))
    return ids


def _insert_params(queue: str, job: NewJob, now: float) -> dict[str, object]:
    limit = job.limit
    return {"queue": queue, "payload": job.payload, "available_at": job.available_at,
            "now": now, "unique_key": job.unique_key, "unique_until": job.unique_until,
            "limit_key": limit.key if limit else None,
            "limit_concurrency": limit.concurrency if limit else None,
            "limit_rate": limit.rate if limit else None,
            "limit_window_s": limit.window_s if limit else None}


def _decode_text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")
