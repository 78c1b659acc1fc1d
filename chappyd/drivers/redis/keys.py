"""The Redis key layout of chappyd, in one place.

Every key of a queue carries the queue in a hash tag, ``chappy:{emails}:ready``, so a
queue lives in one Redis Cluster slot and each Lua script touches one slot. The plain
list a Chappy.php producer LPUSHes onto is named exactly after the queue (``emails``):
a key without braces hashes as a whole, so it lands in that same slot.

Global keys (queue index, paused index, heartbeats, id counter) share their own tag,
``{@global}``, which no queue can have: queue names start with a letter, digit or _.
"""

from __future__ import annotations

from dataclasses import dataclass

GLOBAL_TAG = "@global"


@dataclass(frozen=True, slots=True)
class QueueKeys:
    """The keys of one queue."""

    queue: str
    ready: str  # list of ids: LPUSH in, RPOP out (FIFO)
    delayed: str  # zset id -> available_at
    inflight: str  # zset id -> lease deadline
    failed: str  # zset id -> failed_at
    paused: str  # string, present while paused
    wake: str  # list of wake-up markers idle workers block on
    job_prefix: str  # + id: the job's hash
    intake: str  # the plain list Chappy.php producers LPUSH raw payloads onto
    schedules: str  # hash job name -> its schedule's last enqueued tick (unix s)
    schedule_runs: str  # hash job name -> id of the job enqueued for that tick
    tick_prefix: str  # + "<tick>:<job name>": a tick's dedup record (expires)
    unique: str  # hash unique key -> id of the job holding it (see push_full.lua)
    limited: str  # zset limit key -> when to look at its parked jobs again (reserve.lua)
    limit_prefix: str  # + limit key + ':parked' (list of ids), + ':starts' (zset)

    def job(self, job_id: str) -> str:
        return self.job_prefix + job_id

    def tick(self, job_name: str, tick: int) -> str:
        return f"{self.tick_prefix}{tick}:{job_name}"


@dataclass(frozen=True, slots=True)
class GlobalKeys:
    queues: str  # set of every queue pushed to or reserved from
    paused: str  # set of paused queue names (the per-queue flag is what reserve reads)
    workers: str  # hash "host:pid" -> JSON heartbeat
    ids: str  # counter: blocks of job ids are taken from it (INCRBY)


class KeyLayout:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        base = f"{prefix}:{{{GLOBAL_TAG}}}:"
        self.globals = GlobalKeys(base + "queues", base + "paused", base + "workers",
                                  base + "ids")
        self._queues: dict[str, QueueKeys] = {}

    def queue(self, name: str) -> QueueKeys:
        keys = self._queues.get(name)
        if keys is None:
            base = f"{self.prefix}:{{{name}}}:"
            keys = QueueKeys(
                queue=name, ready=base + "ready", delayed=base + "delayed",
                inflight=base + "inflight", failed=base + "failed", paused=base + "paused",
                wake=base + "wake", job_prefix=base + "job:", intake=name,
                schedules=base + "schedules", schedule_runs=base + "schedule_runs",
                tick_prefix=base + "tick:",
                unique=base + "unique", limited=base + "limited",
                limit_prefix=base + "limit:",
            )
            self._queues[name] = keys
        return keys
