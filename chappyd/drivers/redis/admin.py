"""What chappyctl reads and repairs on Redis: heartbeats, pauses, stats, failed jobs.

None of this is on a worker's hot path; finding a job by id alone asks every known
queue (one pipelined round trip), since a job's keys are named after its queue.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from chappyd.drivers.base import (
    JobRecord,
    JobState,
    QueueStats,
    WorkerInfo,
    job_state,
    live_since,
    prune_before,
)
from chappyd.drivers.redis import cluster
from chappyd.drivers.redis.conn import RedisConnection
from chappyd.drivers.redis.keys import QueueKeys
from chappyd.drivers.redis.scripts import Call, script

if TYPE_CHECKING:
    import redis

#: Bulk deletes and revivals go in batches, so no script blocks Redis for long.
ADMIN_BATCH = 1000
#: Jobs a filtered listing reads per script call (a few ms of server time each).
LISTING_BATCH = 5000


class RedisAdmin(RedisConnection):
    # -- heartbeats and pauses ----------------------------------------------------
    def heartbeat(self, info: WorkerInfo) -> None:
        workers = self.keys.globals.workers
        entry = json.dumps({
            "host": info.host, "pid": info.pid, "queues": list(info.queues),
            "workers": info.workers, "busy": info.busy, "jobs_done": info.jobs_done,
            "started_at": info.started_at, "last_seen": info.last_seen,
        })
        with self.guard() as client:
            pipe = client.pipeline(transaction=False)
            pipe.hset(workers, f"{info.host}:{info.pid}", entry)
            pipe.hgetall(workers)
            _, everyone = pipe.execute()
            oldest = prune_before(time.time())
            gone = [field for field, text in everyone.items()
                    if json.loads(text)["last_seen"] < oldest]
            if gone:
                client.hdel(workers, *gone)

    def remove_worker(self, host: str, pid: int) -> None:
        with self.guard() as client:
            client.hdel(self.keys.globals.workers, f"{host}:{pid}")

    def workers(self) -> list[WorkerInfo]:
        with self.guard() as client:
            entries = client.hgetall(self.keys.globals.workers)
        since = live_since(time.time())
        infos = []
        for text in entries.values():
            d = json.loads(text)
            if d["last_seen"] >= since:
                infos.append(WorkerInfo(d["host"], d["pid"], tuple(d["queues"]), d["workers"],
                                        d["busy"], d["jobs_done"], d["started_at"],
                                        d["last_seen"]))
        return sorted(infos, key=lambda w: (w.host, w.pid))

    def set_paused(self, queue: str, paused: bool) -> None:
        # the per-queue flag is what reserve.lua reads, in the queue's own slot; the
        # global set only lists paused queues for `status`
        k = self.keys.queue(queue)
        with self.guard() as client:
            pipe = client.pipeline(transaction=False)
            if paused:
                pipe.set(k.paused, "1")
                pipe.sadd(self.keys.globals.paused, queue)
            else:
                pipe.delete(k.paused)
                pipe.srem(self.keys.globals.paused, queue)
                # idle workers are blocked on the wake list: the jobs that waited out the
                # pause are picked up now, not at the next idle tick (one marker at most)
                pipe.lpush(k.wake, "1")
                pipe.ltrim(k.wake, 0, 0)
            pipe.execute()

    def paused_queues(self) -> set[str]:
        with self.guard() as client:
            return set(client.smembers(self.keys.globals.paused))

    # -- inspection ---------------------------------------------------------------
    def stats(self) -> list[QueueStats]:
        live = {q for w in self.workers() for q in w.queues}
        paused = self.paused_queues()
        names = sorted(set(self.known_queues()) | live | paused)
        calls = [self._stats_call(queue) for queue in names]
        now = time.time()
        out = []
        for queue, row in zip(names, self.run_many(calls), strict=True):
            ready, delayed, reserved, failed, is_paused, oldest, limited = row
            if not (ready or delayed or reserved or failed or queue in live or queue in paused):
                continue
            age = max(0.0, now - float(oldest)) if ready and oldest else None
            out.append(QueueStats(queue, int(ready), int(delayed), int(reserved), int(failed),
                                  bool(is_paused) or queue in paused, age, int(limited)))
        return out

    def has_work(self, queues: Sequence[str]) -> bool:
        rows = self.run_many([self._stats_call(queue) for queue in sorted(set(queues))])
        return any(int(row[0]) or int(row[2]) for row in rows)

    def _stats_call(self, queue: str) -> Call:
        k = self.keys.queue(queue)
        return Call(script("stats"), [k.ready, k.delayed, k.inflight, k.failed, k.paused,
                                      k.intake, k.job_prefix, k.limited, k.limit_prefix], [])

    def get(self, job_id: str) -> JobRecord | None:
        if not job_id.isdigit():
            return None
        queues = self.known_queues()
        with self.guard() as client:
            pipe = client.pipeline(transaction=False)
            for queue in queues:
                pipe.hgetall(self.keys.queue(queue).job(job_id))
            found = pipe.execute()
        now = time.time()
        for queue, fields in zip(queues, found, strict=True):
            if fields:
                return _record(job_id, queue, fields, now)
        return None

    def failed(self, queue: str | None = None, limit: int = 100) -> list[JobRecord]:
        queues = [queue] if queue is not None else self.known_queues()
        with self.guard() as client:
            pipe = client.pipeline(transaction=False)
            for q in queues:
                pipe.zrevrange(self.keys.queue(q).failed, 0, limit - 1, withscores=True)
            newest = sorted(
                ((score, int(job_id), q) for q, rows in zip(queues, pipe.execute(), strict=True)
                 for job_id, score in rows),
                reverse=True,
            )[:limit]
            pipe = client.pipeline(transaction=False)
            for _, job_id, q in newest:
                pipe.hgetall(self.keys.queue(q).job(str(job_id)))
            found = pipe.execute()
        now = time.time()
        return [_record(str(job_id), q, fields, now)
                for (_, job_id, q), fields in zip(newest, found, strict=True) if fields]

    # -- repair ---------------------------------------------------------------------
    def retry_failed(self, job_ids: Sequence[str] | None, queue: str | None = None) -> int:
        return self._on_failed("retry_failed", job_ids, queue, "failed", "ready", "wake",
                               "job_prefix", "unique")

    def forget(self, job_ids: Sequence[str]) -> int:
        return self._on_failed("forget", job_ids, None, "failed", "job_prefix", "unique")

    def flush(self, queue: str | None = None) -> int:
        return self._on_failed("forget", None, queue, "failed", "job_prefix", "unique")

    def _on_failed(self, name: str, job_ids: Sequence[str] | None, queue: str | None,
                   *parts: str) -> int:
        queues = [queue] if queue is not None else self.known_queues()
        calls = []
        for q in queues:
            keys = [getattr(self.keys.queue(q), part) for part in parts]
            calls.append(Call(script(name), keys, ["all", ADMIN_BATCH]))
        if job_ids is not None:
            ids = [i for i in job_ids if i.isdigit()]
            if not ids:
                return 0
            return sum(self.run_many([Call(c.script, c.keys, ["ids", *ids]) for c in calls]))
        total = 0
        while calls:
            done = self.run_many(calls)
            total += sum(done)
            calls = [c for c, n in zip(calls, done, strict=True) if n]
        return total

    def clear(self, queue: str) -> int:
        k = self.keys.queue(queue)
        call = Call(script("clear"), [k.ready, k.delayed, k.intake, k.job_prefix, k.unique,
                                      k.limited, k.limit_prefix], [ADMIN_BATCH])
        total = 0
        while (deleted := int(self.run(call))) > 0:  # type: ignore[call-overload]
            total += deleted
        return total

    # -- listing (the dashboard) --------------------------------------------------------
    def jobs(self, state: JobState, queue: str | None = None, job: str | None = None,
             limit: int = 50, offset: int = 0) -> list[JobRecord]:
        state = JobState(state)
        queues = [queue] if queue is not None else self.known_queues()
        now = time.time()
        sources = [(q, src) for q in queues for src in _sources(self.keys.queue(q), state, now)]
        if len(sources) == 1:
            # one key (100k failed jobs of one queue): read just the page asked for
            q, src = sources[0]
            entries = [(float(t), int(i), q)
                       for i, t in self._listed(q, src, job, offset, limit)[1]]
        else:
            # the newest offset+limit of every key, merged
            entries = sorted(((float(t), int(i), q) for q, src in sources
                              for i, t in self._listed(q, src, job, 0, offset + limit)[1]),
                             reverse=True)[offset:offset + limit]
        with self.guard() as client:
            pipe = client.pipeline(transaction=False)
            for _, job_id, q in entries:
                pipe.hgetall(self.keys.queue(q).job(str(job_id)))
            found = pipe.execute()
        return [_record(str(job_id), q, fields, now)
                for (_, job_id, q), fields in zip(entries, found, strict=True) if fields]

    def count_jobs(self, state: JobState, queue: str | None = None,
                   job: str | None = None) -> int:
        state = JobState(state)
        queues = [queue] if queue is not None else self.known_queues()
        now = time.time()
        sources = [(q, src) for q in queues for src in _sources(self.keys.queue(q), state, now)]
        if job is not None:
            return sum(self._listed(q, src, job, 0, 0)[0] for q, src in sources)
        with self.guard() as client:
            pipe = client.pipeline(transaction=False)
            for _, (kind, key, low, high) in sources:
                if kind == "list":
                    pipe.llen(key)
                else:
                    pipe.zcount(key, f"({low}" if low else "-inf", high or "+inf")
            return sum(int(n) for n in pipe.execute())

    def _listed(self, queue: str, source: tuple[str, str, str, str], job: str | None,
                skip: int, want: int) -> tuple[int, list[tuple[str, str]]]:
        """(how many match, the first `want` (id, time) after skipping `skip` matches)
        of one key. Without a job filter that is one slice; with one, the script reads
        LISTING_BATCH jobs per call until it has `want` (or, for a count, all)."""
        kind, key, low, high = source
        prefix = self.keys.queue(queue).job_prefix
        if job is None:
            if want <= 0:  # a slice of size 0 would read as "to the end" (-1)
                return 0, []
            _, _, rows = self.run(Call(script("listing"), [key, prefix], [  # type: ignore[misc]
                kind, low, high, skip, want, "", "", want]))
            return len(rows) // 2, list(zip(rows[::2], rows[1::2], strict=True))
        escaped = json.dumps(job, ensure_ascii=False)[1:-1]
        matched, found, offset = 0, [], 0
        while True:
            scanned, matches, rows = self.run(Call(script("listing"), [key, prefix], [  # type: ignore[misc]
                kind, low, high, offset, LISTING_BATCH, job, escaped, skip + want]))
            matched += int(matches)
            found.extend(zip(rows[::2], rows[1::2], strict=True))
            offset += int(scanned)
            if int(scanned) < LISTING_BATCH or (want and len(found) >= skip + want):
                return matched, found[skip:skip + want]

    # -- persistence ------------------------------------------------------------------
    def take_adoption_note(self) -> str | None:
        return None  # no table to adopt: Chappy.php's Redis producer is taken in as it is

    def persistence_warning(self) -> str | None:
        """A one-line warning when Redis may lose jobs by itself: AOF off (lost on a
        restart), appendfsync no, or an eviction policy that may delete job keys under
        memory pressure; else None. The master logs it at start."""
        with self.guard() as client:
            # on a Cluster every primary holds jobs: each must keep them
            targets = cluster.primaries(client) if self.on_cluster else [client]  # type: ignore[arg-type]
            problems = []
            for target in targets:
                problems += [p for p in _persistence_problems(target) if p not in problems]
        return f"{self.description} " + "; it ".join(problems) if problems else None


def _persistence_problems(client: redis.Redis) -> list[str]:
    from redis.exceptions import ResponseError

    info = {**client.info("persistence"), **client.info("memory")}
    try:
        fsync = client.config_get("appendfsync").get("appendfsync")
    except ResponseError:  # CONFIG may be renamed away or denied by an ACL
        fsync = None
    problems = []
    if not int(info.get("aof_enabled", 0)):
        problems.append("runs without AOF (appendonly no): jobs pushed since its last "
                        "snapshot are lost if Redis restarts; set appendonly yes")
    elif fsync == "no":
        problems.append("has appendfsync no: a power loss can lose ~30 s of jobs; "
                        "appendfsync everysec bounds that to ~1 s")
    policy = info.get("maxmemory_policy", "noeviction")
    if policy != "noeviction":
        problems.append(f"has maxmemory-policy {policy}: it may evict job keys when "
                        "memory runs out; set maxmemory-policy noeviction")
    return problems


def _record(job_id: str, queue: str, h: dict[str, str], now: float) -> JobRecord:
    def when(field: str) -> float | None:
        return float(h[field]) if h.get(field) else None

    available_at = when("available_at")
    state = job_state(bool(h.get("failed_at")), bool(h.get("token")), available_at, now)
    return JobRecord(job_id, queue, h.get("payload", ""), int(h.get("attempts") or 0), state,
                     available_at, when("reserved_at"), when("failed_at"),
                     h.get("exception"), when("created_at"))


def _sources(k: QueueKeys, state: JobState,
             now: float) -> list[tuple[str, str, str, str]]:
    """The keys holding a queue's jobs in `state`, as (kind, key, lower bound
    (exclusive), upper bound (inclusive)), '' for none. Jobs of the delayed set that
    are already due count as ready, as in `stats`; a ready job's time is its
    available_at, a reserved one's its lease deadline."""
    due = repr(now)
    if state == JobState.READY:
        return [("list", k.ready, "", ""), ("zset", k.delayed, "", due)]
    if state == JobState.DELAYED:
        return [("zset", k.delayed, due, "")]
    if state == JobState.RESERVED:
        return [("zset", k.inflight, "", "")]
    return [("zset", k.failed, "", "")]

