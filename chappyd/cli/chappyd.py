"""`chappyd`: the daemon's entry point (docs/design.md §6)."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys

import structlog

from chappyd import __version__
from chappyd import validate as v
from chappyd.cli.common import (
    add_config_arguments,
    run_reporting_errors,
    settings_from_args,
)
from chappyd.config import Settings
from chappyd.daemon.master import Master, RunOptions
from chappyd.drivers import open_driver
from chappyd.errors import BackendUnusable, ConfigError, ExitStatus
from chappyd.jobs import Registry, load_registry
from chappyd.logs import configure_logging
from chappyd.scheduler import scheduled_jobs
from chappyd.worker import Worker

PROG = "chappyd"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Run queued jobs in a pool of pre-forked worker processes.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_config_arguments(parser)
    parser.add_argument("--queue", metavar="NAMES",
                        help="queues in strict priority order, comma-separated")
    parser.add_argument("--workers", metavar="N",
                        help=f"child processes, 1-{v.MAX_WORKERS} (default: CPU count)")
    parser.add_argument("--once", action="store_true",
                        help="run the next ready job in this process, then exit")
    parser.add_argument("--max", metavar="N",
                        help=f"exit after N finished attempts in total, 1-{v.MAX_RUN_JOBS}")
    parser.add_argument("--stop-when-empty", action="store_true",
                        help="exit once the queues have no ready or reserved job")
    parser.add_argument("--max-jobs-per-child", metavar="N",
                        help="recycle a child after at most N jobs (0: never; default 1000)")
    parser.add_argument("--max-memory-per-child", metavar="MiB",
                        help="recycle a child whose RSS exceeds MiB after a job (0: off)")
    parser.add_argument("--timeout", metavar="S",
                        help=f"default job timeout, seconds, at most {v.MAX_TIMEOUT_S:g}")
    parser.add_argument("--graceful-timeout", metavar="S",
                        help="how long a stop waits for running jobs, seconds")
    parser.add_argument("--check-config", action="store_true",
                        help="validate the configuration and import CHAPPY_JOBS, print the "
                             "settings (secrets masked), exit")
    parser.add_argument("--daemon", action="store_true",
                        help="detach from the terminal (not under systemd)")
    parser.add_argument("--pidfile", metavar="PATH", help="with --daemon: write the pid here")
    parser.add_argument("--log-format", metavar="json|console",
                        help="log lines as JSON or for people (default: JSON off a TTY)")
    parser.add_argument("--log-level", metavar="LEVEL",
                        help="debug, info, warning, error or critical (default: info)")
    return parser


#: what --once cannot be combined with, and why
ONCE_CONFLICTS = {
    "--max": "--once runs one job; --max=N is for the pool",
    "--stop-when-empty": "--once runs one job; --stop-when-empty is for the pool",
    "--daemon": "--once runs in the foreground; --daemon is for the pool",
}


def check_flags(args: argparse.Namespace) -> None:
    """Flags that are not settings: --max and the combinations (78 naming them)."""
    if args.pidfile is not None and not args.daemon:
        raise ConfigError("--pidfile", args.pidfile, "--pidfile",
                          "needs --daemon (--pidfile is only written with --daemon)")
    if args.once:
        given = {"--max": args.max is not None, "--stop-when-empty": args.stop_when_empty,
                 "--daemon": args.daemon}
        for other, why in ONCE_CONFLICTS.items():
            if given[other]:
                raise ConfigError("--once", None, "--once",
                                  f"cannot be combined with {other} ({why})")
    if args.max is not None:
        try:
            args.max = v.whole_number(1, v.MAX_RUN_JOBS)(args.max)
        except ValueError as exc:
            raise ConfigError("--max", args.max, "--max", str(exc)) from None
    if args.pidfile is not None:
        check_pidfile_directory(args.pidfile)


def check_pidfile_directory(path: str) -> None:
    """Before detaching: afterwards nobody would see the error."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ConfigError("--pidfile", path, "--pidfile", f"directory {directory} does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ConfigError("--pidfile", path, "--pidfile",
                          f"directory {directory} is not writable by this user")


def check_fd_budget(settings: Settings) -> None:
    """Refuse a worker count the descriptor limit cannot hold, instead of EMFILE later."""
    problem = v.fd_budget_problem(settings.workers)
    if problem:
        raise ConfigError("CHAPPY_WORKERS", str(settings.workers),
                          settings.source("CHAPPY_WORKERS"), problem)


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
    check_flags(args)
    settings = settings_from_args(args, flags_of(args))
    registry = load_registry(settings)  # --check-config too: imports as the daemon would
    scheduled_jobs(registry, settings.timezone)  # a bad schedule is 78 naming its class
    if args.once:
        if not args.check_config:
            _configure(settings, registry)
            return run_once(settings, registry)
    else:
        check_fd_budget(settings)
    if args.check_config:
        return check_config(settings, registry)
    if not args.daemon:
        return run_master(args, settings, registry)
    from chappyd.daemon.daemonize import PidFile, daemon_context  # only with --daemon

    pidfile = PidFile(args.pidfile) if args.pidfile else None
    if pidfile is not None:
        pidfile.check()  # while the error can still reach the terminal
    with daemon_context(pidfile):
        return run_master(args, settings, registry)


NO_JOBS_WARNING = ("no Job classes are registered (set CHAPPY_JOBS): every job will fail "
                   "with UnknownJob")


def _configure(settings: Settings, registry: Registry) -> None:
    configure_logging(settings.log_format, settings.log_level)
    log = structlog.get_logger("chappyd")
    for warning in settings.warnings:
        log.warning("config_warning", problem=warning)
    if not len(registry):
        log.warning("no_jobs_registered", jobs=list(settings.jobs), problem=NO_JOBS_WARNING)


def reload_settings(args: argparse.Namespace) -> Settings:
    """HUP: the same sources again, and CHAPPY_JOBS must still import."""
    # imported on HUP, not at start: subprocess is a few ms of every start otherwise
    from chappyd.jobcheck import check_jobs_import

    settings = settings_from_args(args, flags_of(args))
    # the master's loop (lease renewal included) waits: half a lease, 5 s at least
    check_jobs_import(settings.jobs, settings.source("CHAPPY_JOBS"),
                      timeout_s=max(5.0, settings.lease_s / 2))
    check_fd_budget(settings)
    return settings


def run_master(args: argparse.Namespace, settings: Settings, registry: Registry) -> int:
    """The prefork master until it stops; HUP re-reads the same sources."""
    _configure(settings, registry)
    master = Master(
        settings, registry,
        RunOptions(max_jobs=args.max, stop_when_empty=args.stop_when_empty),
        reload_settings=lambda: reload_settings(args),
    )
    return master.run()


def check_config(settings: Settings, registry: Registry) -> int:
    refuse_never_working_backend(settings)
    for key, value in settings.effective().items():
        print(f"{key}={value}  # {settings.source(key)}")
    for warning in settings.warnings:
        print(f"{PROG}: warning: {warning}", file=sys.stderr)
    if not len(registry):
        print(f"{PROG}: warning: {NO_JOBS_WARNING}", file=sys.stderr)
    return int(ExitStatus.OK)


def refuse_never_working_backend(settings: Settings) -> None:
    """What --check-config can see of the backend without touching a server: an SQLite
    path that is a directory, not an SQLite file, read-only or not creatable
    (BackendUnusable, exit 78)."""
    if settings.backend != "sqlite":
        return
    from chappyd.drivers.sqlite.opening import header_problem, unusable_reason

    path = settings.sqlite_path()
    reason = unusable_reason(path, writable=True) or header_problem(path)
    if reason is not None:
        raise BackendUnusable(settings.backend_description, reason)


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
