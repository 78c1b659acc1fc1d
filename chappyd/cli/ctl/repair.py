"""`chappyctl retry`, `forget`, `flush` and `clear`: commands that change jobs.

Ids are all checked before anything changes, so a typo in one id of five changes
nothing. Each change is one driver verb, a single statement or script on the
backend: `retry --all` or `flush` over 100k jobs is one round trip.
"""

from __future__ import annotations

import argparse

from chappyd.cli.ctl.base import (
    FAILURE,
    OK,
    Command,
    Context,
    Misuse,
    Refused,
    checked,
    job_ids,
    optional_queue,
    plural,
    queue_name,
)
from chappyd.drivers.base import Driver, JobState
from chappyd.errors import JobNotFound


def check_failed(driver: Driver, ids: list[str], verb: str) -> None:
    """Raise unless every id names a failed job (JobNotFound, or Refused)."""
    for job_id in ids:
        record = driver.get(job_id)
        if record is None:
            raise JobNotFound(job_id)
        if record.state != JobState.FAILED:
            raise Refused(f"job {job_id} is {record.state}, not failed: only failed jobs "
                          f"can be {verb}; nothing was changed")


def report(ctx: Context, done: int, asked: int, what: str) -> int:
    ctx.out(f"{what} {plural(done, 'failed job')}")
    if done < asked:
        # they were all failed a moment ago: another operator or worker got there first
        ctx.note(f"{asked - done} of the {asked} jobs changed meanwhile and were skipped")
        return FAILURE
    return OK


class Retry(Command):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("ids", nargs="*", metavar="ID",
                            help="failed jobs to put back ('all' is --all)")
        parser.add_argument("--all", action="store_true", help="every failed job")
        parser.add_argument("--queue", metavar="Q",
                            help="with --all or without ids: every failed job of Q")

    def run(self, args: argparse.Namespace, ctx: Context) -> int:
        if args.all and args.ids:
            raise Misuse("give job ids or --all, not both")
        everything = args.all or args.ids == ["all"]  # `queue:retry all`, as in Laravel
        ids = [] if everything else job_ids(args.ids)
        queue = optional_queue("--queue", args.queue)
        if not everything and not ids and queue is None:
            raise Misuse("give job ids, or --all (optionally with --queue)")
        if ids and not everything and queue is not None:
            raise Misuse("--queue goes with --all, not with job ids")
        driver = ctx.driver()
        if not ids:
            return report(ctx, driver.retry_failed(None, queue), 0, "retried")
        check_failed(driver, ids, "retried")
        return report(ctx, driver.retry_failed(ids), len(ids), "retried")


class Forget(Command):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("ids", nargs="+", metavar="ID", help="failed jobs to delete")

    def run(self, args: argparse.Namespace, ctx: Context) -> int:
        ids = job_ids(args.ids)
        driver = ctx.driver()
        check_failed(driver, ids, "forgotten")
        return report(ctx, driver.forget(ids), len(ids), "forgot")


class Flush(Command):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--queue", metavar="Q", help="only the failed jobs of Q")

    def run(self, args: argparse.Namespace, ctx: Context) -> int:
        queue = optional_queue("--queue", args.queue)
        return report(ctx, ctx.driver().flush(queue), 0, "deleted")


class Clear(Command):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("queue", metavar="QUEUE")
        parser.add_argument("--yes", action="store_true",
                            help="do not ask (required when stdin is not a terminal)")

    def run(self, args: argparse.Namespace, ctx: Context) -> int:
        queue = checked("QUEUE", args.queue, queue_name)
        if not args.yes and not ctx.stdin.isatty():
            raise Refused(f"clear deletes the ready and delayed jobs of {queue!r}: "
                          "pass --yes to confirm (stdin is not a terminal)")
        driver = ctx.driver()
        if not args.yes and not confirm(ctx, driver, queue):
            ctx.note("nothing deleted")
            return FAILURE
        ctx.out(f"deleted {plural(driver.clear(queue), 'job')} from {queue}")
        return OK


def confirm(ctx: Context, driver: Driver, queue: str) -> bool:
    waiting = sum(s.ready + s.delayed for s in driver.stats() if s.queue == queue)
    ctx.stderr.write(f"Delete the {plural(waiting, 'ready or delayed job')} of queue "
                     f"{queue!r}? Reserved and failed jobs stay. [y/N] ")
    ctx.stderr.flush()
    answer = ctx.stdin.readline().strip().lower()
    return answer in ("y", "yes")
