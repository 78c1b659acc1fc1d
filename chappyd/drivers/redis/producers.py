"""What producers and the periodic scheduler call on Redis: pushes (plain, ready-now,
with unique keys and limits) and periodic ticks.

RedisDriver (driver.py) builds on this for the worker's side: reserve, wait, ack.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from chappyd.drivers.base import (
    TICK_RECORD_S,
    ExistingId,
    NewJob,
    TickOutcome,
    TickResult,
)
from chappyd.drivers.redis.admin import RedisAdmin
from chappyd.drivers.redis.scripts import Call, script

#: Pushes larger than this go as several script calls in one pipelined round trip.
PUSH_CHUNK = 1000
PUSH_READY = script("push_ready")
ENQUEUE_TICK = script("enqueue_tick")
#: Why push(conn=...) cannot work here, and what to do instead.
REFUSED_CONN = (
    "conn= needs a PostgreSQL or SQLite queue: Redis cannot take part in your "
    "database's transaction, so a job pushed there could outlive a rollback; with "
    "Redis, push after the commit instead (e.g. Django's transaction.on_commit), "
    "see docs/transactions.md")


class RedisProducers(RedisAdmin):
    # -- producers --------------------------------------------------------------
    def push_many(
        self, queue: str, jobs: Sequence[NewJob], conn: object | None = None
    ) -> list[str]:
        if conn is not None:
            raise ValueError(REFUSED_CONN)
        if not jobs:
            return []
        if any(job.unique_key is not None or job.limit is not None for job in jobs):
            return self._push_full(queue, jobs)
        if len(jobs) == 1 and queue in self._registered:
            now = time.time()
            if jobs[0].available_at <= now:
                return [self._push_ready(queue, jobs[0], now)]
        k = self.keys.queue(queue)
        with self.guard() as client:
            ids = self.take_ids(client, len(jobs))
        calls = []
        for start in range(0, len(jobs), PUSH_CHUNK):
            chunk_ids = ids[start:start + PUSH_CHUNK]
            args: list[str | float] = []
            for job_id, job in zip(chunk_ids, jobs[start:start + PUSH_CHUNK], strict=True):
                args += [job_id, job.payload, repr(float(job.available_at))]
            keys = [k.ready, k.delayed, k.wake, *(k.job(i) for i in chunk_ids)]
            calls.append(Call(script("push"), keys, args))
        before = self.registering([queue])
        if before or len(calls) > 1:
            self.run_many(calls, before)
        else:
            self.run(calls[0])
        self.registered([queue])
        return ids

    def _push_full(self, queue: str, jobs: Sequence[NewJob]) -> list[str]:
        """A batch with unique keys: push_full.lua creates only the jobs whose key is
        free in the queue and names the holder of each other one."""
        k = self.keys.queue(queue)
        with self.guard() as client:
            ids = self.take_ids(client, len(jobs))
        calls = []
        for start in range(0, len(jobs), PUSH_CHUNK):
            chunk_ids = ids[start:start + PUSH_CHUNK]
            args: list[str | float] = []
            for job_id, job in zip(chunk_ids, jobs[start:start + PUSH_CHUNK], strict=True):
                args += [job_id, job.payload, repr(float(job.available_at)),
                         job.unique_key or "", job.unique_until or "done", *_limit_args(job)]
            keys = [k.ready, k.delayed, k.wake, k.unique, k.job_prefix,
                    *(k.job(i) for i in chunk_ids)]
            calls.append(Call(script("push_full"), keys, args))
        # chunks run in order in one pipeline: a later chunk sees the keys of earlier ones
        before = self.registering([queue])
        # one call and nothing to register: straight to the connection, no pipeline object
        results = (self.run_many(calls, before) if before or len(calls) > 1
                   else [self.run(calls[0])])
        self.registered([queue])
        out: list[str] = list(ids)
        for start, result in zip(range(0, len(jobs), PUSH_CHUNK), results, strict=True):
            for i in range(1, len(result), 2):
                out[start + int(result[i]) - 1] = ExistingId(result[i + 1])
        return out

    def _push_ready(self, queue: str, job: NewJob, now: float) -> str:
        """One job that is ready now: the one-by-one push, the producer path a web
        request takes. One round trip with a script half as costly as push.lua."""
        k = self.keys.queue(queue)
        with self.guard() as client:
            job_id = self.take_ids(client, 1)[0]
            self.run_on(client, Call(PUSH_READY, (k.ready, k.wake, k.job_prefix + job_id),
                                     (job_id, job.payload, repr(job.available_at), repr(now))))
        return job_id

    # -- periodic jobs ----------------------------------------------------------
    def enqueue_tick(self, queue: str, job_name: str, tick: int, job: NewJob,
                     skip_if_waiting: bool = True) -> TickResult:
        k = self.keys.queue(queue)
        with self.guard() as client:
            job_id = self.take_ids(client, 1)[0]
        keys = [k.ready, k.delayed, k.wake, k.job(job_id), k.tick(job_name, tick),
                k.schedules, k.schedule_runs, k.job_prefix]
        args = [job_name, tick, job_id, job.payload, repr(float(job.available_at)),
                TICK_RECORD_S, "1" if skip_if_waiting else "0"]
        call = Call(ENQUEUE_TICK, keys, args)
        before = self.registering([queue])
        result = self.run_many([call], before)[0] if before else self.run(call)
        self.registered([queue])
        outcome = TickOutcome(_text(result[0]))
        return TickResult(outcome, _text(result[1]) if len(result) > 1 else None)

    def last_ticks(self, jobs: Mapping[str, str]) -> dict[str, int]:
        names = list(jobs)
        with self.guard() as client:
            pipe = client.pipeline(transaction=False)
            for name in names:
                pipe.hget(self.keys.queue(jobs[name]).schedules, name)
            found = pipe.execute()
        return {name: int(tick) for name, tick in zip(names, found, strict=True)
                if tick is not None}


def _limit_args(job: NewJob) -> list[str]:
    """push_full.lua's limit fields of `job`: key, concurrency, rate, window ('' = none)."""
    limit = job.limit
    if limit is None:
        return ["", "", "", ""]
    return [limit.key, "" if limit.concurrency is None else str(limit.concurrency),
            "" if limit.rate is None else str(limit.rate),
            "" if limit.window_s is None else repr(limit.window_s)]


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
