"""`chappyctl push`: push one job by name; prints its id alone."""

from __future__ import annotations

import argparse
import json
from typing import Any

from chappyd.cli.common import load_registry
from chappyd.cli.ctl.base import (
    OK,
    Command,
    Context,
    Refused,
    checked,
    non_negative_seconds,
    optional_queue,
    positive_int,
)
from chappyd.drivers.base import ExistingId
from chappyd.manager import QueueManager


class Push(Command):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("job", metavar="JOB",
                            help="the job name, e.g. app.jobs.SendWelcomeEmail")
        parser.add_argument("--data", default="{}", metavar="JSON",
                            help="the job's data, a JSON object; - reads it from stdin")
        parser.add_argument("--queue", metavar="Q",
                            help="the queue (default: the job class's, else 'default')")
        parser.add_argument("--delay", default="0", metavar="S",
                            help="seconds before the job becomes available")
        parser.add_argument("--max-attempts", metavar="N",
                            help="attempts before it is failed (default: the job's, "
                                 "else MAX_ATTEMPTS)")
        parser.add_argument("--force", action="store_true",
                            help="push a job name missing from the registry (CHAPPY_JOBS)")

    def run(self, args: argparse.Namespace, ctx: Context) -> int:
        # every check before the first write: bad input pushes nothing
        data = read_data(args.data, ctx)
        queue = optional_queue("--queue", args.queue)
        delay_s = checked("--delay", args.delay, non_negative_seconds)
        max_attempts = (None if args.max_attempts is None
                        else checked("--max-attempts", args.max_attempts, positive_int))
        settings = ctx.settings
        registry = load_registry(settings)
        if settings.jobs and args.job not in registry and not args.force:
            raise Refused(
                f"{args.job!r} is not a registered job (CHAPPY_JOBS={','.join(settings.jobs)}); "
                "use --force to push it anyway")
        manager = QueueManager(settings, registry, driver=ctx.driver())
        try:
            job_id = manager.dispatch(args.job, data, queue=queue, delay=delay_s,
                                      max_attempts=max_attempts)
        except ValueError as exc:  # a unique_key the payload cannot carry
            raise Refused(str(exc)) from None
        ctx.out(str(job_id))
        if isinstance(job_id, ExistingId):
            ctx.note(f"job {job_id} holds this unique key already: nothing was pushed")
        return OK


def read_data(raw: str, ctx: Context) -> dict[str, Any]:
    text = ctx.stdin.read() if raw == "-" else raw
    where = "--data (from stdin)" if raw == "-" else "--data"
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise Refused(f"{where} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        name = type(data).__name__
        kind = "null" if data is None else ("an " if name[0] in "aeiou" else "a ") + name
        raise Refused(f"{where} must be a JSON object, not {kind}")
    return data
