"""`chappyctl failed` and `show`: read-only views of jobs."""

from __future__ import annotations

import argparse

from chappyd.cli.ctl.base import (
    OK,
    Command,
    Context,
    checked,
    job_id,
    optional_queue,
    positive_int,
)
from chappyd.cli.ctl.render import failed_document, first_line, job_document, standard_json
from chappyd.drivers.base import JobRecord
from chappyd.errors import JobNotFound

DEFAULT_LIMIT = 100


class Failed(Command):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--queue", metavar="Q", help="only this queue")
        parser.add_argument("--limit", metavar="N", default=str(DEFAULT_LIMIT),
                            help=f"at most N jobs, newest failure first (default {DEFAULT_LIMIT})")
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def run(self, args: argparse.Namespace, ctx: Context) -> int:
        queue = optional_queue("--queue", args.queue)
        limit = checked("--limit", args.limit, positive_int)
        records = ctx.driver(inspect=True).failed(queue, limit)
        if args.json:
            ctx.emit_json([failed_document(r) for r in records])
            return OK
        if not records:
            ctx.out("(no failed jobs)")
            return OK
        ctx.out(f"{'ID':>10}  {'QUEUE':<16} {'JOB':<36} {'ATT':>3}  {'FAILED AT':<24} EXCEPTION")
        for r in records:
            doc = failed_document(r)
            ctx.out(f"{doc['id']:>10}  {r.queue:<16} {doc['job'] or '-':<36} {r.attempts:>3}"
                    f"  {doc['failed_at']:<24} {first_line(r.exception, 60)}")
        if len(records) == limit:
            ctx.note(f"showing the newest {limit}; use --limit for more")
        return OK


class Show(Command):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("id", metavar="ID", help="the job's id")
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def run(self, args: argparse.Namespace, ctx: Context) -> int:
        wanted = checked("ID", args.id, job_id)
        record = ctx.driver(inspect=True).get(wanted)
        if record is None:
            raise JobNotFound(wanted)
        if args.json:
            ctx.emit_json(job_document(record))
        else:
            print_job(ctx, record)
        return OK


def print_job(ctx: Context, record: JobRecord) -> None:
    doc = job_document(record)
    for key in ("id", "queue", "job", "state", "attempts", "max_attempts", "created_at",
                "available_at", "reserved_at", "failed_at"):
        value = doc[key]
        ctx.out(f"{key + ':':<14}{'-' if value is None else value}")
    payload = doc["payload"]
    shown = payload if isinstance(payload, str) else standard_json(payload, indent=2)
    ctx.out("payload:")
    for line in shown.splitlines() or [""]:
        ctx.out(f"  {line}")
    ctx.out("exception:" + ("" if record.exception else " -"))
    for line in (record.exception or "").splitlines():
        ctx.out(f"  {line}")
