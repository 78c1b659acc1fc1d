"""What both commands share: loading settings and the jobs, and reporting errors."""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable, Mapping

from chappyd.config import OPTIONS_BY_FLAG, Settings, load_settings
from chappyd.errors import ChappyError, ConfigError, ExitStatus
from chappyd.jobs import Registry
from chappyd.scheduler import scheduled_jobs


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="PATH",
                        help="env file to read instead of /etc/chappyd.env")
    parser.add_argument("--instance", metavar="NAME",
                        help="also read /etc/chappyd/NAME.env; NAME is the default queue")


def settings_from_args(args: argparse.Namespace, flags: Mapping[str, str | None]) -> Settings:
    given = {flag: str(value) for flag, value in flags.items()
             if value is not None and flag in OPTIONS_BY_FLAG}
    return load_settings(flags=given, config_path=args.config, instance=args.instance)


def load_registry(settings: Settings) -> Registry:
    registry = Registry()
    try:
        registry.load(settings.jobs)
    except Exception as exc:  # a job module that fails to import is a config problem
        raise ConfigError("CHAPPY_JOBS", ",".join(settings.jobs), settings.source("CHAPPY_JOBS"),
                          f"cannot import: {exc}") from None
    scheduled_jobs(registry, settings.timezone)  # a bad schedule is 78 naming its class
    return registry


def run_reporting_errors(prog: str, body: Callable[[], int]) -> int:
    """Run `body`; a ChappyError becomes one line on stderr and its exit status,
    anything else a traceback and 70."""
    try:
        return body()
    except ChappyError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return int(exc.exit_status)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return int(ExitStatus.FAILURE)
    except Exception:
        # a bug: the whole traceback, and EX_SOFTWARE rather than Python's generic 1
        traceback.print_exc()
        return int(ExitStatus.SOFTWARE)
