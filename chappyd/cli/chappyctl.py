"""`chappyctl`: push, inspect and repair queues (DESIGN §5)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from chappyd import __version__
from chappyd.cli.common import (
    add_config_arguments,
    load_registry,
    run_reporting_errors,
    settings_from_args,
)
from chappyd.config import Settings, validate_queue_name
from chappyd.drivers import open_driver
from chappyd.errors import ChappyError, ExitStatus
from chappyd.manager import QueueManager

PROG = "chappyctl"


class UsageError(ChappyError):
    pass


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Push, inspect and repair queues.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_config_arguments(parser)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    status = commands.add_parser("status", help="queues and live workers")
    status.add_argument("--queue", metavar="Q", help="only this queue")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(run=cmd_status)

    push = commands.add_parser("push", help="push a job; prints its id")
    push.add_argument("job", metavar="JOB", help="the job name, e.g. app.jobs.SendWelcomeEmail")
    push.add_argument("--data", default="{}", metavar="JSON",
                      help="the job's data as a JSON object, or - to read it from stdin")
    push.add_argument("--queue", metavar="Q")
    push.add_argument("--delay", type=float, default=0, metavar="S")
    push.add_argument("--max-attempts", type=int, metavar="N")
    push.add_argument("--force", action="store_true",
                      help="push a job name that is not in the registry (CHAPPY_JOBS)")
    push.set_defaults(run=cmd_push)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_reporting_errors(PROG, lambda: _main(args))


def _main(args: argparse.Namespace) -> int:
    settings = settings_from_args(args, {})
    runner: Callable[[argparse.Namespace, Settings], int] = args.run
    return runner(args, settings)


def cmd_push(args: argparse.Namespace, settings: Settings) -> int:
    text = sys.stdin.read() if args.data == "-" else args.data
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"--data is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"--data must be a JSON object, not a {type(data).__name__}")
    if args.max_attempts is not None and args.max_attempts < 1:
        raise UsageError("--max-attempts must be at least 1")
    if args.queue is not None:
        try:
            validate_queue_name(args.queue)
        except ValueError as exc:
            raise UsageError(f"--queue: {exc}") from None
    registry = load_registry(settings)
    if settings.jobs and args.job not in registry and not args.force:
        raise UsageError(
            f"{args.job!r} is not a registered job (CHAPPY_JOBS={','.join(settings.jobs)}); "
            "use --force to push it anyway")
    manager = QueueManager(settings, registry)
    try:
        job_id = manager.dispatch(args.job, data, queue=args.queue, delay=args.delay,
                                  max_attempts=args.max_attempts)
    finally:
        manager.close()
    print(job_id)
    return int(ExitStatus.OK)


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    driver = open_driver(settings)
    try:
        stats = [s for s in driver.stats() if args.queue in (None, s.queue)]
        workers = driver.workers()
    finally:
        driver.close()
    now = time.time()
    document: dict[str, Any] = {
        "queues": [
            {"queue": s.queue, "ready": s.ready, "delayed": s.delayed, "reserved": s.reserved,
             "failed": s.failed, "paused": s.paused,
             "oldest_ready_age_s": None if s.oldest_ready_age_s is None
             else round(s.oldest_ready_age_s, 3)}
            for s in stats
        ],
        "workers": [
            {"host": w.host, "pid": w.pid, "queues": list(w.queues), "workers": w.workers,
             "busy": w.busy, "jobs_done": w.jobs_done, "started_at": iso(w.started_at),
             "last_seen": iso(w.last_seen)}
            for w in workers if args.queue is None or args.queue in w.queues
        ],
    }
    if args.json:
        print(json.dumps(document, indent=2))
        return int(ExitStatus.OK)
    print(f"{'QUEUE':<24} {'READY':>8} {'DELAYED':>8} {'RESERVED':>9} {'FAILED':>8}  OLDEST")
    for q in document["queues"]:
        age = "-" if q["oldest_ready_age_s"] is None else f"{q['oldest_ready_age_s']:.1f}s"
        name = q["queue"] + (" (paused)" if q["paused"] else "")
        print(f"{name:<24} {q['ready']:>8} {q['delayed']:>8} {q['reserved']:>9} "
              f"{q['failed']:>8}  {age}")
    if not document["queues"]:
        print("(no jobs)")
    print()
    print(f"{'HOST':<20} {'PID':>8} {'BUSY':>9} {'DONE':>9}  UP  QUEUES")
    for w in workers:
        up = f"{int(now - w.started_at)}s"
        print(f"{w.host:<20} {w.pid:>8} {w.busy:>4}/{w.workers:<4} {w.jobs_done:>9}  {up}  "
              f"{','.join(w.queues)}")
    if not workers:
        print("(no live workers)")
    return int(ExitStatus.OK)


if __name__ == "__main__":
    sys.exit(main())
