"""`chappyctl push`: push one job by name; prints its id alone."""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from chappyd.cli.ctl.base import (
    OK,
    Command,
    Context,
    Refused,
    attempts_int,
    checked,
    non_negative_seconds,
    optional_queue,
    standard_json,
)
from chappyd.drivers.base import ExistingId
from chappyd.jobs import load_registry
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
        job = checked("JOB", args.job, job_name)
        data = read_data(args.data, ctx)
        queue = optional_queue("--queue", args.queue)
        delay_s = checked("--delay", args.delay, non_negative_seconds)
        max_attempts = (None if args.max_attempts is None
                        else checked("--max-attempts", args.max_attempts, attempts_int))
        settings = ctx.settings
        registry = load_registry(settings)
        if settings.jobs and job not in registry and not args.force:
            raise Refused(not_registered(job, settings.jobs, sorted(registry.names())))
        manager = QueueManager(settings, registry, driver=ctx.driver())
        try:
            job_id = manager.dispatch(job, data, queue=queue, delay=delay_s,
                                      max_attempts=max_attempts)
        except ValueError as exc:  # the class's queue name, a unique_key or limit the payload
            # cannot carry: checked before any write
            raise Refused(f"{job}: {exc}; nothing was pushed") from None
        ctx.out(str(job_id))
        if isinstance(job_id, ExistingId):
            ctx.note(f"job {job_id} holds this unique key already: nothing was pushed")
        return OK


def job_name(raw: str) -> str:
    if not raw.strip():
        raise ValueError("a job name cannot be empty")
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("a job name must be valid UTF-8") from None
    return raw


def not_registered(job: str, modules: tuple[str, ...], names: list[str]) -> str:
    shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "") if names else "none"
    return (f"{job!r} is not a registered job (CHAPPY_JOBS={','.join(modules)} registers: "
            f"{shown}); check the name and CHAPPY_JOBS, or use --force to push it anyway")


def read_data(raw: str, ctx: Context) -> dict[str, Any]:
    text = ctx.stdin.read() if raw == "-" else raw
    where = "--data (from stdin)" if raw == "-" else "--data"
    try:
        data = json.loads(text, parse_constant=_not_standard, parse_float=_finite)
        standard_json(data)
    except UnicodeEncodeError:
        raise Refused(f"{where} is not valid UTF-8 (a lone surrogate)") from None
    except ValueError as exc:
        raise Refused(f"{where} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        name = type(data).__name__
        kind = "null" if data is None else ("an " if name[0] in "aeiou" else "a ") + name
        raise Refused(f"{where} must be a JSON object, not {kind}")
    return data


def _not_standard(name: str) -> object:
    raise ValueError(f"{name} is not standard JSON")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text} is out of range (Infinity is not standard JSON)")
    return value
