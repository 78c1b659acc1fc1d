"""The driver interface every backend implements, and the values that cross it.

A driver knows one backend and nothing of processes. Every state transition of a
job is one atomic operation on the backend, so that a process killed between two
calls never leaves a job only in its own memory (docs/design.md §3, §4).

Vocabulary (one word, one meaning):
- owner: who holds a reservation, ``"<host>:<master pid>:<child pid>"``. The master
  renews leases and releases everything of a dead child by owner.
- token: a random string per reservation. ack/retry/fail/release only act when the
  row still carries it, so a worker whose lease was taken over changes nothing.
- release: give a job back *without* charging the attempt (daemon stopping).
- retry: a failed attempt; the job comes back at `available_at`.
- retry_failed: an operator revives a failed job (attempts reset to 0).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from chappyd.limits import JobLimit


class JobState(StrEnum):
    READY = "ready"
    DELAYED = "delayed"
    RESERVED = "reserved"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job to insert: its raw JSON payload and when it becomes available (unix s).

    `unique_key` (from the payload's "unique_key") makes the push create nothing while
    another job holds that key in a blocking state; `unique_until` ("started" or
    "done") says which states block. `limit` (from the payload's "limit_key",
    "concurrency" and "rate") is checked by the claim."""

    payload: str
    available_at: float
    unique_key: str | None = None
    unique_until: str | None = None
    limit: JobLimit | None = None


class ExistingId(str):
    """An id push_many returns for a job it did not create: the job that holds its
    unique key (a plain str everywhere else)."""

    __slots__ = ()


def first_of_each_key(jobs: Sequence[NewJob]) -> tuple[list[NewJob], list[int]]:
    """A batch without repeated unique keys, and for each job of `jobs` the index of
    the one inserted for it: a key repeated within one batch is inserted once."""
    kept: list[NewJob] = []
    where: list[int] = []
    seen: dict[str, int] = {}
    for job in jobs:
        if job.unique_key is not None:
            index = seen.get(job.unique_key)
            if index is not None:
                where.append(index)
                continue
            seen[job.unique_key] = len(kept)
        where.append(len(kept))
        kept.append(job)
    return kept, where


def spread_ids(inserted: Sequence[str], where: Sequence[int]) -> list[str]:
    """The ids of a batch without repeated keys mapped back onto the batch as pushed: a later
    copy of a key gets the first one's id, as an ExistingId."""
    out: list[str] = []
    used: set[int] = set()
    for index in where:
        job_id = inserted[index]
        out.append(ExistingId(job_id) if index in used else job_id)
        used.add(index)
    return out


class TickOutcome(StrEnum):
    """What `enqueue_tick` did with a (job name, tick)."""

    ENQUEUED = "enqueued"
    DUPLICATE = "duplicate"  # that tick was taken already, by this or another master
    SKIPPED = "skipped"  # an earlier run of the schedule still waits: no pile-up


@dataclass(frozen=True, slots=True)
class TickResult:
    outcome: TickOutcome
    job_id: str | None = None  # set when ENQUEUED


#: A tick's dedup record is kept this long after the tick (rows pruned, keys expired):
#: far longer than any master's view of "now" can lag behind another's.
TICK_RECORD_S = 86_400


@dataclass(frozen=True, slots=True)
class Reservation:
    """A job reserved by one owner; `attempts` already counts this attempt."""

    id: str
    queue: str
    payload: str
    attempts: int
    token: str
    reserved_at: float


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A job as stored, in any state; times are unix seconds (None when unset)."""

    id: str
    queue: str
    payload: str
    attempts: int
    state: JobState
    available_at: float | None
    reserved_at: float | None
    failed_at: float | None
    exception: str | None
    created_at: float | None


@dataclass(frozen=True, slots=True)
class QueueStats:
    queue: str
    ready: int
    delayed: int
    reserved: int
    failed: int
    paused: bool
    oldest_ready_age_s: float | None
    #: ready jobs that wait because their concurrency or rate limit is full
    limited: int = 0


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """One master's heartbeat, as `chappyctl status` shows it."""

    host: str
    pid: int
    queues: tuple[str, ...]
    workers: int
    busy: int
    jobs_done: int
    started_at: float
    last_seen: float


def listed_queues(
    counted: dict[str, QueueStats], paused: set[str], workers: Sequence[WorkerInfo]
) -> list[QueueStats]:
    """`stats()`'s rows: the queues with jobs, plus paused queues and queues a live
    worker serves (as empty rows), sorted by name (docs/design.md §7)."""
    rows = dict(counted)
    named = set(paused)
    for info in workers:
        named.update(info.queues)
    for queue in named - rows.keys():
        rows[queue] = QueueStats(queue, 0, 0, 0, 0, queue in paused, None)
    return [rows[name] for name in sorted(rows)]


#: Masters heartbeat every HEARTBEAT_INTERVAL_S and drop out of `status` after
#: WORKER_STALE_S of silence (docs/design.md §7).
HEARTBEAT_INTERVAL_S = 5.0
WORKER_STALE_S = 15.0
#: A heartbeat silent this long is deleted by the next master's heartbeat: long after
#: it left `status`, so that a master stopped for a while is still seen coming back.
WORKER_PRUNE_S = 4 * WORKER_STALE_S


def live_since(now: float) -> float:
    """Heartbeats at or after this time count as live masters."""
    return now - WORKER_STALE_S


def prune_before(now: float) -> float:
    """Heartbeats older than this are deleted."""
    return now - WORKER_PRUNE_S


def job_state(failed: bool, reserved: bool, available_at: float | None,
              now: float) -> JobState:
    """A stored job's state from its fields: the one rule every backend shows."""
    if failed:
        return JobState.FAILED
    if reserved:
        return JobState.RESERVED
    if available_at is not None and available_at > now:
        return JobState.DELAYED
    return JobState.READY


class Driver(Protocol):
    """The backend seam. Methods raise BackendUnavailable when the backend is down."""

    #: 'sqlite', 'postgres' or 'redis'
    kind: str
    #: how many jobs a worker may reserve in one call with benefit (1 = no batching)
    prefetch: int

    # -- schema ---------------------------------------------------------------
    def migrate(self) -> str | None:
        """Create or upgrade the schema; idempotent and safe to run concurrently. When it
        adopted a queue table made by Chappy.php's migration, a one-line note saying
        what it kept; else None."""

    def schema_sql(self) -> str:
        """The idempotent DDL (`chappyctl queue:migration`); '' when there is none."""

    def take_adoption_note(self) -> str | None:
        """What auto-migrate did when it adopted a Chappy.php table on connecting (one
        line, once; None otherwise), for the master to log: drivers do not log."""

    def persistence_warning(self) -> str | None:
        """Why jobs may not survive a restart of the backend's server (Redis without
        AOF, say), for the master to log at start; None when they do."""

    # -- producers ------------------------------------------------------------
    def push_many(
        self, queue: str, jobs: Sequence[NewJob], conn: object | None = None
    ) -> list[str]:
        """Insert jobs in one round trip; returns their ids in order. Wakes idle workers.

        With `conn`, the caller's own DB-API connection to this store, the jobs are
        written by it inside its open transaction: they exist, and workers wake, only
        when the caller commits; the driver neither commits nor rolls back. A `conn`
        that is closed, of the wrong kind or reaching another store raises ValueError
        before anything is written, as does a backend that cannot take part in the
        caller's transaction (Redis). Every push goes through this one method, so that
        a rule of the insert (unique jobs, say) holds for both kinds."""

    # -- periodic jobs ----------------------------------------------------------
    def enqueue_tick(self, queue: str, job_name: str, tick: int, job: NewJob,
                     skip_if_waiting: bool = True) -> TickResult:
        """Enqueue `job` as the run of `job_name` for `tick` (unix s), once per backend.

        Atomic: however many masters call this for one (job_name, tick) at once,
        exactly one gets ENQUEUED, the others DUPLICATE. With `skip_if_waiting`, the
        tick is recorded but nothing is pushed (SKIPPED) while the schedule's last
        enqueued run is still waiting (ready or delayed). An enqueued tick becomes the
        schedule's last tick (see `last_ticks`)."""

    def last_ticks(self, jobs: Mapping[str, str]) -> dict[str, int]:
        """The last enqueued tick (unix s) of each schedule in `jobs` (job name ->
        queue); never-enqueued ones are absent. Read-only: creates no schema, file or
        key, and answers {} where the schema does not exist yet."""

    # -- workers --------------------------------------------------------------
    def reserve(
        self, queues: Sequence[str], owner: str, lease_s: float, limit: int = 1
    ) -> list[Reservation]:
        """Atomically reserve up to `limit` ready jobs, `queues` in strict priority
        order, skipping paused queues. Charges one attempt each, sets token, owner,
        reserved_at and a lease of `lease_s`."""

    def wait(self, queues: Sequence[str], timeout_s: float) -> None:
        """Block until a job may be ready in `queues`, or `timeout_s` passes.
        Returns early on a push or when the next delayed job falls due; may return
        spuriously. Must not spin."""

    def ack(self, reservation: Reservation) -> bool:
        """The job succeeded: delete it. False (nothing changed) if the token is stale."""

    def ack_many(self, reservations: Sequence[Reservation]) -> int:
        """The jobs succeeded: delete each whose token is still theirs, in one round trip
        (on a Redis Cluster one per node holding them), each exactly as ack() would (its
        unique key and limit slot freed with it). Stale tokens are skipped, as ack()
        skips them. Returns how many were deleted."""

    def ack_and_reserve(
        self, acks: Sequence[Reservation], queues: Sequence[str], owner: str,
        lease_s: float, limit: int = 1,
    ) -> tuple[int, list[Reservation]]:
        """ack_many(acks), then reserve(queues, owner, lease_s, limit), in one round trip
        (one transaction on the SQL backends), so that a worker finishing a prefetched
        batch hands in its acks with its next claim: (acked count, reservations). The
        reserve sees what the acks freed. Without acks it costs what reserve() costs; a
        `limit` below 1 reserves nothing and only acks. On a Redis Cluster: one round
        trip per node for one queue; for several, the acks' and then reserve()'s."""

    def retry(self, reservation: Reservation, available_at: float, error: str) -> bool:
        """A failed attempt with attempts left: back to ready/delayed at `available_at`,
        `exception` set to `error`. False if the token is stale."""

    def fail(self, reservation: Reservation, error: str) -> bool:
        """Final failure: `failed_at` set, `exception` = `error`. False if stale."""

    def release(self, reservations: Sequence[Reservation]) -> int:
        """Give jobs back at once without charging their attempt (stopping, unused
        prefetch). Stale tokens are skipped. Returns how many were released."""

    # -- the master -----------------------------------------------------------
    def extend_leases(self, owners: Sequence[str], lease_s: float) -> int:
        """Push the lease of every job held by `owners` to now + lease_s."""

    def held_by(self, owner: str) -> list[Reservation]:
        """Every job `owner` holds now (the master asks after reaping a child, then
        retries/fails the one it ran and releases the rest)."""

    def release_owner(self, owner: str) -> int:
        """Give back at once, attempts refunded, every job `owner` holds: a stop
        must not burn attempts (docs/design.md §3.5). One round trip."""

    def expire_leases(self) -> int:
        """Return to ready every job whose lease ran out (its host or master vanished),
        keeping the attempt charged and recording `LeaseExpired` in `exception`; the
        worker fails a job reserved past its max_attempts without running it. Safe to
        call from every master at once."""

    # -- heartbeats and pauses --------------------------------------------------
    def heartbeat(self, info: WorkerInfo) -> None: ...

    def remove_worker(self, host: str, pid: int) -> None: ...

    def workers(self) -> list[WorkerInfo]:
        """Masters seen within WORKER_STALE_S."""

    def set_paused(self, queue: str, paused: bool) -> None: ...

    def paused_queues(self) -> set[str]: ...

    # -- inspection and repair (chappyctl) --------------------------------------
    def stats(self) -> list[QueueStats]:
        """Queues with any job or a live worker, sorted by name."""

    def has_work(self, queues: Sequence[str]) -> bool:
        """Whether any job of `queues` is ready now or reserved: the question of
        --stop-when-empty, asked every half second while a backlog drains. stats()
        answers it too, but counts every row; a driver whose stats() reads the whole
        store answers it with index probes instead."""
        wanted = set(queues)
        return any((s.ready or s.reserved) for s in self.stats() if s.queue in wanted)

    def get(self, job_id: str) -> JobRecord | None: ...

    def failed(self, queue: str | None = None, limit: int = 100) -> list[JobRecord]:
        """Failed jobs, newest failure first."""

    def retry_failed(self, job_ids: Sequence[str] | None, queue: str | None = None) -> int:
        """Failed jobs back to ready with attempts 0 (None: all, or all of `queue`)."""

    def forget(self, job_ids: Sequence[str]) -> int:
        """Delete failed jobs by id."""

    def flush(self, queue: str | None = None) -> int:
        """Delete all failed jobs (of `queue`)."""

    def clear(self, queue: str) -> int:
        """Delete ready and delayed jobs of `queue` (not reserved or failed)."""

    def close(self) -> None: ...

    # -- listing (the dashboard) ---------------------------------------------------
    def jobs(self, state: JobState, queue: str | None = None, job: str | None = None,
             limit: int = 50, offset: int = 0) -> list[JobRecord]:
        """One page of the jobs in `state` (of `queue`, named `job`), newest first:
        by failed_at (failed), reserved_at (reserved) or available_at (ready, delayed),
        then id. Reads only the page asked for, so 100k failed jobs never load."""

    def count_jobs(self, state: JobState, queue: str | None = None,
                   job: str | None = None) -> int:
        """How many jobs `jobs()` pages through with the same filters."""
