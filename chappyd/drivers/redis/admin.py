"""What chappyctl reads and repairs on Redis: heartbeats, pauses, stats, failed jobs.

None of this is on a worker's hot path; finding a job by id alone asks every known
queue (one pipelined round trip), since a job's keys are named after its queue.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

from chappyd.drivers.base import (
    JobRecord,
    QueueStats,
    WorkerInfo,
    job_state,
    live_since,
    prune_before,
)
from chappyd.drivers.redis.conn import RedisConnection
from chappyd.drivers.redis.scripts import Call, script

#: Bulk deletes and revivals go in batches, so no script blocks Redis for long.
ADMIN_BATCH = 1000


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
        calls = []
        for queue in names:
            k = self.keys.queue(queue)
            keys = [k.ready, k.delayed, k.inflight, k.failed, k.paused, k.intake, k.job_prefix,
                    k.limited, k.limit_prefix]
            calls.append(Call(script("stats"), keys, []))
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

    # -- persistence ------------------------------------------------------------------
    def persistence_warning(self) -> str | None:
        """A one-line warning when Redis may lose jobs by itself: AOF off (lost on a
        restart), appendfsync no, or an eviction policy that may delete job keys under
        memory pressure; else None. The master logs it at start."""
        from redis.exceptions import ResponseError

        with self.guard() as client:
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
        return f"{self.description} " + "; it ".join(problems) if problems else None


def _record(job_id: str, queue: str, h: dict[str, str], now: float) -> JobRecord:
    def when(field: str) -> float | None:
        return float(h[field]) if h.get(field) else None

    available_at = when("available_at")
    state = job_state(bool(h.get("failed_at")), bool(h.get("token")), available_at, now)
    return JobRecord(job_id, queue, h.get("payload", ""), int(h.get("attempts") or 0), state,
                     available_at, when("reserved_at"), when("failed_at"),
                     h.get("exception"), when("created_at"))
