"""`chappyd`: the daemon's entry point (docs/design.md §6)."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import sys

import structlog

from chappyd import __version__
from chappyd.cli.common import (
    add_config_arguments,
    load_registry,
    run_reporting_errors,
    settings_from_args,
)
from chappyd.config import Settings
from chappyd.daemonize import PidFile, daemon_context
from chappyd.drivers import open_driver
from chappyd.errors import ExitStatus
from chappyd.jobs import Registry
from chappyd.logs import configure_logging
from chappyd.master import Master, RunOptions
from chappyd.worker import Worker

PROG = "chappyd"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Run queued jobs in a pool of pre-forked worker processes.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_config_arguments(parser)
    parser.add_argument("--queue", metavar="NAMES",
                        help="queues in strict priority order, comma-separated")
    parser.add_argument("--workers", metavar="N", help="child processes (default: CPU count)")
    parser.add_argument("--once", action="store_true",
                        help="run the next ready job in this process, then exit")
    parser.add_argument("--max", metavar="N", type=_count, help="exit after N jobs in total")
    parser.add_argument("--stop-when-empty", action="store_true",
                        help="exit once the queues have no ready or reserved job")
    parser.add_argument("--max-jobs-per-child", metavar="N")
    parser.add_argument("--max-memory-per-child", metavar="MiB")
    parser.add_argument("--timeout", metavar="S", help="default job timeout, seconds")
    parser.add_argument("--graceful-timeout", metavar="S",
                        help="how long a stop waits for running jobs, seconds")
    parser.add_argument("--check-config", action="store_true",
                        help="validate the configuration, print it (secrets masked), exit")
    parser.add_argument("--daemon", action="store_true",
                        help="detach from the terminal (not under systemd)")
    parser.add_argument("--pidfile", metavar="PATH", help="with --daemon: write the pid here")
    parser.add_argument("--log-format", metavar="json|console")
    parser.add_argument("--log-level", metavar="LEVEL")
    return parser


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def flags_of(args: argparse.Namespace) -> dict[str, str | None]:
    return {
        "--queue": args.queue, "--workers": args.workers,
        "--max-jobs-per-child": args.max_jobs_per_child,
        "--max-memory-per-child": args.max_memory_per_child,
        "--timeout": args.timeout, "--graceful-timeout": args.graceful_timeout,
        "--log-format": args.log_format, "--log-level": args.log_level,
    }


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_reporting_errors(PROG, lambda: _main(args))


def _main(args: argparse.Namespace) -> int:
    settings = settings_from_args(args, flags_of(args))
    if args.check_config:
        return check_config(settings)
    registry = load_registry(settings)
    if args.once:
        _configure(settings)
        return run_once(settings, registry)
    pidfile = PidFile(args.pidfile) if args.pidfile else None
    if not args.daemon:
        with pidfile or contextlib.nullcontext():
            return run_master(args, settings, registry)
    if pidfile is not None:
        pidfile.check()  # while the error can still reach the terminal
    with daemon_context(pidfile):
        return run_master(args, settings, registry)


def _configure(settings: Settings) -> None:
    configure_logging(settings.log_format, settings.log_level)
    log = structlog.get_logger("chappyd")
    for warning in settings.warnings:
        log.warning("config_warning", problem=warning)


def run_master(args: argparse.Namespace, settings: Settings, registry: Registry) -> int:
    """The prefork master until it stops; HUP re-reads the same sources."""
    _configure(settings)
    master = Master(
        settings, registry,
        RunOptions(max_jobs=args.max, stop_when_empty=args.stop_when_empty),
        reload_settings=lambda: settings_from_args(args, flags_of(args)),
    )
    return master.run()


def check_config(settings: Settings) -> int:
    for key, value in settings.effective().items():
        print(f"{key}={value}  # {settings.source(key)}")
    for warning in settings.warnings:
        print(f"{PROG}: warning: {warning}", file=sys.stderr)
    return int(ExitStatus.OK)


def run_once(settings: Settings, registry: Registry) -> int:
    """--once: run the next ready job in this process (no fork), then exit 0."""
    stopping = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    driver = open_driver(settings)
    owner = f"{socket.gethostname()}:{os.getpid()}:{os.getpid()}"
    try:
        Worker(driver, registry, settings, owner).run_once()
    finally:
        driver.close()
    return int(ExitStatus.OK)


if __name__ == "__main__":
    sys.exit(main())
