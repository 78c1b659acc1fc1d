"""`chappyctl status`: counts per queue and the live masters."""

from __future__ import annotations

import argparse
import time
from typing import Any

from chappyd.cli.ctl.base import OK, Command, Context, optional_queue
from chappyd.cli.ctl.render import duration, iso
from chappyd.drivers.base import QueueStats, WorkerInfo


class Status(Command):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--queue", metavar="Q",
                            help="only this queue (listed with zeros when it is empty)")
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def run(self, args: argparse.Namespace, ctx: Context) -> int:
        queue = optional_queue("--queue", args.queue)
        driver = ctx.driver(inspect=True)
        stats = driver.stats()
        workers = driver.workers()
        if queue is not None:
            stats = [s for s in stats if s.queue == queue] or [
                QueueStats(queue, 0, 0, 0, 0, queue in driver.paused_queues(), None)]
            workers = [w for w in workers if queue in w.queues]
        if args.json:
            ctx.emit_json({"queues": [queue_document(s) for s in stats],
                           "workers": [worker_document(w) for w in workers]})
        else:
            print_tables(ctx, stats, workers)
        return OK


def queue_document(s: QueueStats) -> dict[str, Any]:
    age = None if s.oldest_ready_age_s is None else round(s.oldest_ready_age_s, 3)
    return {"queue": s.queue, "ready": s.ready, "delayed": s.delayed, "reserved": s.reserved,
            "failed": s.failed, "paused": s.paused, "oldest_ready_age_s": age,
            "limited": s.limited}


def worker_document(w: WorkerInfo) -> dict[str, Any]:
    return {"host": w.host, "pid": w.pid, "queues": list(w.queues), "workers": w.workers,
            "busy": w.busy, "jobs_done": w.jobs_done, "started_at": iso(w.started_at),
            "last_seen": iso(w.last_seen)}


def print_tables(ctx: Context, stats: list[QueueStats], workers: list[WorkerInfo]) -> None:
    ctx.out(f"backend: {ctx.settings.backend_description}")
    ctx.out()
    ctx.out(f"{'QUEUE':<24} {'READY':>8} {'DELAYED':>8} {'RESERVED':>9} {'FAILED':>8}"
            f" {'LIMITED':>8}  OLDEST READY")
    for s in stats:
        age = "-" if s.oldest_ready_age_s is None else duration(s.oldest_ready_age_s)
        name = s.queue + (" (paused)" if s.paused else "")
        ctx.out(f"{name:<24} {s.ready:>8} {s.delayed:>8} {s.reserved:>9} {s.failed:>8}"
                f" {s.limited:>8}  {age}")
    if not stats:
        ctx.out("(no jobs)")
    ctx.out()
    now = time.time()
    ctx.out(f"{'HOST':<24} {'PID':>8} {'BUSY':>5} {'IDLE':>5} {'DONE':>9} {'UP':>7}"
            f" {'SEEN':>8}  QUEUES")
    for w in workers:
        ctx.out(f"{w.host:<24} {w.pid:>8} {w.busy:>5} {max(0, w.workers - w.busy):>5}"
                f" {w.jobs_done:>9} {duration(now - w.started_at):>7}"
                f" {duration(now - w.last_seen) + ' ago':>8}  {','.join(w.queues)}")
    if not workers:
        ctx.out("(no live workers)")
