"""The Redis driver: every state lives in Redis and moves in atomic Lua scripts.

A queue is a ready list, a delayed zset (by available_at), an in-flight zset (by lease
deadline), a failed zset (by failed_at) and one hash per job; the layout is in
keys.py and each transition is one script in lua/. A job is never only in
a worker's memory: idle workers block on a per-queue *wake* list that holds markers,
never jobs, so a process killed at any instant loses nothing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from contextlib import suppress
from typing import TYPE_CHECKING

from chappyd.config import Settings
from chappyd.drivers.base import (
    Reservation,
)
from chappyd.drivers.redis import cluster
from chappyd.drivers.redis.conn import SOCKET_TIMEOUT_S
from chappyd.drivers.redis.producers import REFUSED_CONN, RedisProducers  # noqa: F401
from chappyd.drivers.redis.scripts import ALL_SCRIPTS, Call, per_queue, run_after, script
from chappyd.errors import BackendUnavailable

if TYPE_CHECKING:
    import redis

#: Jobs reserved per call. A reserve is one round trip for the whole batch while acks
#: stay one per job, so a SIGKILL re-runs at most the one job that was running; the
#: rest of the batch is released by the master. The batch adapts to how long jobs take:
#: a prefetched job waits at most about PREFETCH_WINDOW_S behind its batch-mates, so
#: slow jobs are reserved one at a time, and no-op-fast ones go PREFETCH_MAX at once. The
#: first slow job of a batch still has its batch-mates behind it: the worker gives those
#: back once it has run 100 ms (prefetch.py), so none waits while another worker idles.
#: (drain bench, docs/backends/redis.md: 1 -> 3.0k jobs/s, 4 -> 6.0k, 8 -> 5.5k, 32 -> 5.4k)
PREFETCH_START = 4
PREFETCH_MAX = 16
PREFETCH_WINDOW_S = 0.005
#: At most this many raw payloads from a PHP producer are taken in per reserve call.
INTAKE_PER_CALL = 64
#: At most this many due delayed jobs are promoted per queue per reserve call.
PROMOTE_PER_CALL = 256
#: expire_leases takes back at most this many jobs per queue per call.
EXPIRE_PER_CALL = 1000
#: On a Cluster an idle worker of several queues blocks on the first queue's wake list
#: this long at a time, looking at the other queues' in between (see _wait_cluster).
CLUSTER_WAKE_SLICE_S = 0.1
LEASE_EXPIRED = "LeaseExpired: the worker holding this job stopped renewing its lease"
#: The queue's keys ack_many.lua and release.lua take before the job hashes.
ACK_MANY_KEYS = ("inflight", "unique", "limited", "wake")
RELEASE_KEYS = ("inflight", "ready", "wake", "unique", "limited")


class RedisDriver(RedisProducers):
    kind = "redis"
    prefetch = PREFETCH_START
    prefetch_max = PREFETCH_MAX

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._last_reserve_at = 0.0
        self._last_full_batch = 0
        #: (owner, token seed) of a reserve whose reply was lost
        self._lost_reserve: tuple[str, str] | None = None
        #: the last reserve() request (queues, owner, lease_s, limit), repeated by wait()
        self._last_request: tuple[tuple[str, ...], str, float, int] | None = None
        #: reserved inside wait(), handed out by the next reserve() for the same request
        self._pending: list[Reservation] = []
        self._pending_for: tuple[tuple[str, ...], str] | None = None

    def migrate(self) -> None:
        """Nothing to create: keys appear on first write. Checks the connection and
        loads every script so the first real call needs no SCRIPT LOAD."""
        self.load_scripts([script(name).source for name in ALL_SCRIPTS])

    def schema_sql(self) -> str:
        return ""

    # -- workers ----------------------------------------------------------------
    def reserve(
        self, queues: Sequence[str], owner: str, lease_s: float, limit: int = 1
    ) -> list[Reservation]:
        if self._pending:
            taken, self._pending = self._pending, []
            if self._pending_for == (tuple(queues), owner):
                return taken
            self.release(taken)  # reserved in wait() for another request: give back
        if self._lost_reserve is not None:
            recovered = self._recover_lost_reserve()
            if recovered:
                return recovered
        if self.on_cluster and len(queues) > 1:
            return self._reserve_each(queues, owner, lease_s, limit)
        call = self._reserve_call(queues, owner, lease_s, limit)
        before = self.registering(queues)
        try:
            result = self.run_many([call], before)[0] if before else self.run(call)
        except BackendUnavailable:
            # the script may have run and only its reply been lost: those jobs would be
            # held (and their leases renewed by our master) with nobody running them
            self._lost_reserve = (owner, str(call.args[5]))
            raise
        return self._noted(self._reserved(result), queues, owner, lease_s, limit)

    def ack_and_reserve(
        self, acks: Sequence[Reservation], queues: Sequence[str], owner: str,
        lease_s: float, limit: int = 1,
    ) -> tuple[int, list[Reservation]]:
        if limit < 1 or not acks or self._pending or self._lost_reserve is not None or (
                self.on_cluster and len(queues) > 1):
            # nothing to claim or to hand in; or a reserve that needs no round trip (jobs
            # reserved in wait()), recovers a lost one first, or goes queue by queue
            acked = self.ack_many(acks)
            return acked, (self.reserve(queues, owner, lease_s, limit) if limit >= 1 else [])
        calls = per_queue(self.keys, "ack_many", ACK_MANY_KEYS, acks)
        call = self._reserve_call(queues, owner, lease_s, limit)
        try:
            # the acks' scripts first: the reserve then sees the slots they freed (after a
            # NOSCRIPT they run again right after it: the slots are then seen next time)
            *acked, result = self.run_many([*calls, call], self.registering(queues))
        except Exception:
            self._lost_reserve = (owner, str(call.args[5]))  # see reserve()
            raise
        return sum(acked), self._noted(self._reserved(result), queues, owner, lease_s, limit)

    def _noted(self, taken: list[Reservation], queues: Sequence[str], owner: str,
               lease_s: float, limit: int) -> list[Reservation]:
        """`taken`, after noting the request for wait() and the batch for its size."""
        self.registered(queues)
        self._adapt_prefetch(len(taken) if len(taken) == limit else 0)
        self._last_request = (tuple(queues), owner, lease_s, limit)
        return taken

    def _reserve_each(self, queues: Sequence[str], owner: str, lease_s: float,
                      limit: int) -> list[Reservation]:
        """On a Cluster: one reserve script per queue, in priority order, until `limit`
        jobs are taken (a script touches one queue's slot only). When a call fails after
        others took jobs, those are handed out and the lost one is recovered next time."""
        before = self.registering(queues)
        if before:
            self.run_many([], before)
        taken: list[Reservation] = []
        for queue in queues:
            call = self._reserve_call([queue], owner, lease_s, limit - len(taken))
            try:
                result = self.run(call)
            except BackendUnavailable:
                self._lost_reserve = (owner, str(call.args[5]))  # see reserve()
                if taken:
                    return taken
                raise
            taken += self._reserved(result)
            if len(taken) >= limit:
                break
        return self._noted(taken, queues, owner, lease_s, limit)

    def _reserve_call(self, queues: Sequence[str], owner: str, lease_s: float,
                      limit: int) -> Call:
        keys: list[str] = []
        for queue in queues:
            k = self.keys.queue(queue)
            keys += [k.ready, k.delayed, k.inflight, k.paused, k.intake, k.wake, k.job_prefix,
                     k.unique, k.limited, k.limit_prefix]
        with self.guard() as client:
            first_id = self.spare_ids(client, INTAKE_PER_CALL)
        args = [owner, repr(float(lease_s)), limit, first_id, INTAKE_PER_CALL,
                os.urandom(6).hex(), PROMOTE_PER_CALL, *queues]
        return Call(script("reserve"), keys, args)

    def _reserved(self, result: Sequence) -> list[Reservation]:
        self.use_ids(int(result[0]))
        return _reservations(result[1:])

    def _recover_lost_reserve(self) -> list[Reservation]:
        """The jobs of a reserve whose reply never arrived (their tokens start with its
        seed), now handed out; [] when it never ran."""
        assert self._lost_reserve is not None
        owner, seed = self._lost_reserve
        held = self.held_by(owner)
        self._lost_reserve = None
        return [r for r in held if r.token.startswith(seed + ".")]

    def _adapt_prefetch(self, full_batch: int) -> None:
        """Size the next batch from how fast the last full one was worked off. A partial
        batch means the worker went idle in between: its timing says nothing."""
        now = time.monotonic()
        if self._last_full_batch:
            per_job_s = max((now - self._last_reserve_at) / self._last_full_batch, 1e-6)
            self.prefetch = max(1, min(self.prefetch_max, int(PREFETCH_WINDOW_S / per_job_s)))
        self._last_reserve_at, self._last_full_batch = now, full_batch

    def wait(self, queues: Sequence[str], timeout_s: float) -> None:
        """Block on the queues' wake lists (BRPOP pops a marker, never a job) until work
        is signalled ('1') or the next delayed job falls due. A 'd' marker says a
        delayed job was added: re-read the next due time and block again.

        When the worker's last reserve() asked for these queues, the same reserve is
        pipelined behind the BRPOP: Redis runs it the moment the wake-up comes, and the
        next reserve() hands its jobs out without another round trip (pick-up latency).
        Those jobs are reserved to the owner like any prefetched ones; close() gives
        back any that were never handed out."""
        deadline = time.monotonic() + min(timeout_s, SOCKET_TIMEOUT_S - 2.0)
        wake_keys = [self.keys.queue(q).wake for q in queues]
        if self.on_cluster:
            self._wait_cluster(wake_keys, queues, deadline)
            return
        request = self._last_request if self._last_request and not self._pending else None
        if request is not None and request[0] != tuple(queues):
            request = None
        with self.guard() as client:
            while (block_s := min(deadline - time.monotonic(), self._due_in(client, queues))) > 0:
                # BRPOP takes fractional seconds since Redis 6; 0 would mean "forever"
                brpop = ("BRPOP", *wake_keys, max(block_s, 0.01))
                if request is None:
                    popped = client.execute_command(*brpop)
                else:
                    popped = self._pop_then_reserve(client, brpop, request)
                    if self._pending:
                        return
                if popped is None or popped[1] != "d":
                    return

    def _wait_cluster(self, wake_keys: list[str], queues: Sequence[str],
                      deadline: float) -> None:
        """wait() on a Cluster, where one BRPOP cannot name keys of several slots: it
        blocks on the first (highest-priority) queue's wake list for at most
        CLUSTER_WAKE_SLICE_S, and between two blocks pops one marker of each other queue
        (one pipelined round trip per node). A push to the first queue wakes the worker
        at once, one to another queue within a slice. One blocking connection per queue
        would wake at once for all, but costs a connection per queue per worker and a
        thread or a poll loop to watch them; the slice costs an idle worker of several
        queues about 40 round trips a second, and a worker of one queue nothing."""
        with self.guard() as client:
            first = cluster.node_client(client, wake_keys[0])  # type: ignore[arg-type]
            delayed = [self.keys.queue(queue).delayed for queue in queues]
            while (block_s := min(deadline - time.monotonic(),
                                  cluster.due_in(client, delayed))) > 0:  # type: ignore[arg-type]
                if len(wake_keys) > 1:
                    pipe = client.pipeline()
                    for key in wake_keys[1:]:
                        pipe.rpop(key)
                    markers = pipe.execute()
                    if "1" in markers:
                        return
                    if "d" in markers:
                        continue  # a delayed job was added: read the next due time again
                    block_s = min(block_s, CLUSTER_WAKE_SLICE_S)
                popped = first.execute_command("BRPOP", wake_keys[0], max(block_s, 0.01))
                if popped is not None and popped[1] != "d":
                    return
                if popped is None and len(wake_keys) == 1:
                    return

    def _pop_then_reserve(self, client: redis.Redis, brpop: tuple,
                          request: tuple[tuple[str, ...], str, float, int]) -> object:
        queues, owner, lease_s, limit = request
        call = self._reserve_call(queues, owner, lease_s, limit)
        try:
            popped, result = run_after(client, brpop, call)
        except Exception:
            self._lost_reserve = (owner, str(call.args[5]))  # see reserve()
            raise
        self._pending = self._reserved(result)
        self._pending_for = (queues, owner)
        return popped

    def _due_in(self, client: redis.Redis, queues: Sequence[str]) -> float:
        """Seconds (server clock) until the first delayed job of `queues` falls due."""
        pipe = client.pipeline(transaction=False)
        pipe.time()
        for queue in queues:
            pipe.zrange(self.keys.queue(queue).delayed, 0, 0, withscores=True)
            # a limit key whose parked jobs may get room then (0: a running one ended)
            pipe.zrange(self.keys.queue(queue).limited, 0, 0, withscores=True)
        (seconds, micros), *firsts = pipe.execute()
        now = seconds + micros / 1e6
        return min((first[0][1] - now for first in firsts if first), default=float("inf"))

    def ack(self, reservation: Reservation) -> bool:
        return self.ack_many([reservation]) == 1

    def ack_many(self, reservations: Sequence[Reservation]) -> int:
        calls = per_queue(self.keys, "ack_many", ACK_MANY_KEYS, reservations)
        # one queue: straight to the connection, no pipeline object (scripts.run)
        return int(self.run(calls[0])) if len(calls) == 1 else sum(self.run_many(calls))

    def retry(self, reservation: Reservation, available_at: float, error: str) -> bool:
        k = self.keys.queue(reservation.queue)
        keys = [k.job(reservation.id), k.inflight, k.ready, k.delayed, k.wake, k.unique,
                k.limited]
        args = [reservation.id, reservation.token, repr(float(available_at)), error]
        return self.run(Call(script("retry"), keys, args)) == 1

    def fail(self, reservation: Reservation, error: str) -> bool:
        k = self.keys.queue(reservation.queue)
        keys = [k.job(reservation.id), k.inflight, k.failed, k.unique, k.limited, k.wake]
        return self.run(Call(script("fail"), keys,
                             [reservation.id, reservation.token, error])) == 1

    def release(self, reservations: Sequence[Reservation]) -> int:
        return sum(self.run_many(per_queue(self.keys, "release", RELEASE_KEYS, reservations)))

    def close(self) -> None:
        """Give back jobs reserved in wait() but never handed out, then disconnect."""
        pending, self._pending = self._pending, []
        if pending:
            with suppress(BackendUnavailable):  # else their leases expire: nothing lost
                self.release(pending)
        super().close()

    # -- the master -------------------------------------------------------------
    def _owner_call(self, name: str, args: Sequence[str | float], *parts: str) -> object:
        """One script over every known queue: the in-flight zsets are where an owner's
        jobs are, and every queue a job was reserved from is in the queue index."""
        queues = self.known_queues()
        if not queues:
            return [] if name == "held_by" else 0
        if self.on_cluster:  # one slot per script: one call per queue, pipelined per node
            results = self.run_many([Call(
                script(name), [getattr(self.keys.queue(q), part) for part in parts],
                [*args, q] if name == "held_by" else list(args)) for q in queues])
            if name == "held_by":
                return [value for result in results for value in result]
            return sum(int(result) for result in results)
        keys = [getattr(self.keys.queue(q), part) for q in queues for part in parts]
        extra = queues if name == "held_by" else []
        return self.run(Call(script(name), keys, [*args, *extra]))

    def extend_leases(self, owners: Sequence[str], lease_s: float) -> int:
        if not owners:
            return 0
        return int(self._owner_call("extend_leases", [repr(float(lease_s)), *owners],
                                    "inflight", "job_prefix"))

    def held_by(self, owner: str) -> list[Reservation]:
        result = self._owner_call("held_by", [owner], "inflight", "job_prefix")
        return sorted(_reservations(result), key=lambda r: int(r.id))

    def release_owner(self, owner: str) -> int:
        return int(self._owner_call("release_owner", [owner],
                                    "inflight", "ready", "wake", "job_prefix", "unique",
                                    "limited"))

    def expire_leases(self) -> int:
        return int(self._owner_call("expire_leases", [LEASE_EXPIRED, EXPIRE_PER_CALL],
                                    "inflight", "ready", "wake", "job_prefix", "unique",
                                    "limited"))


def _reservations(flat: Sequence) -> list[Reservation]:
    return [
        Reservation(str(flat[i]), flat[i + 1], flat[i + 2], int(flat[i + 3]), flat[i + 4],
                    float(flat[i + 5]))
        for i in range(0, len(flat), 6)
    ]
