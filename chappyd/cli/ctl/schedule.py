"""`chappyctl schedule:list` and `schedule:test`: the periodic jobs of CHAPPY_JOBS."""

from __future__ import annotations

import argparse
import dataclasses
from datetime import UTC, datetime
from typing import Any

from chappyd.cli.ctl.base import OK, Command, Context, Refused
from chappyd.cli.ctl.render import iso
from chappyd.drivers import open_driver
from chappyd.jobs import load_registry
from chappyd.scheduler import ScheduledJob, run_now, scheduled_jobs


class ScheduleList(Command):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def run(self, args: argparse.Namespace, ctx: Context) -> int:
        jobs = _scheduled(ctx)
        last = _last_ticks(ctx, jobs)
        now = datetime.now(UTC)
        rows = [schedule_document(job, now, last.get(job.name)) for job in jobs]
        if args.json:
            ctx.emit_json(rows)
            return OK
        if not rows:
            ctx.out("(no scheduled jobs in CHAPPY_JOBS)")
            return OK
        ctx.out(f"{'JOB':<40} {'QUEUE':<14} {'SCHEDULE':<16} {'TIMEZONE':<16} "
                f"{'NEXT RUN':<24} LAST RUN")
        for row in rows:
            ctx.out(f"{row['job']:<40} {row['queue']:<14} {row['schedule']:<16} "
                    f"{row['timezone']:<16} {row['next_run']:<24} {row['last_run'] or '-'}")
        return OK


class ScheduleTest(Command):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("job", metavar="JOB", help="a scheduled job's name")

    def run(self, args: argparse.Namespace, ctx: Context) -> int:
        by_name = {job.name: job for job in _scheduled(ctx)}
        job = by_name.get(args.job)
        if job is None:
            known = ", ".join(sorted(by_name)) or "none"
            raise Refused(f"{args.job!r} is not a scheduled job of CHAPPY_JOBS "
                          f"(scheduled: {known})")
        ctx.out(run_now(ctx.driver(), job, ctx.settings.max_attempts))
        return OK


def schedule_document(job: ScheduledJob, now: datetime, last_s: int | None) -> dict[str, Any]:
    return {"job": job.name, "queue": job.queue, "schedule": job.schedule.expression,
            "timezone": job.schedule.timezone,
            "next_run": iso(job.schedule.next_run(now).timestamp()),
            "last_run": iso(last_s)}


def _scheduled(ctx: Context) -> list[ScheduledJob]:
    settings = ctx.settings
    return scheduled_jobs(load_registry(settings), settings.timezone)


def _last_ticks(ctx: Context, jobs: list[ScheduledJob]) -> dict[str, int]:
    """Read-only: without auto-migration, so that looking creates no schema or file."""
    if not jobs:
        return {}
    driver = open_driver(dataclasses.replace(ctx.settings, auto_migrate=False))
    try:
        wanted = {job.name: job.queue for job in jobs}
        return ctx.first_contact(lambda: driver.last_ticks(wanted))
    finally:
        driver.close()
