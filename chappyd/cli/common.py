"""What both commands share: the --config/--instance arguments, loading settings,
and reporting errors."""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable, Mapping

from chappyd.config import OPTIONS_BY_FLAG, Settings, load_settings
from chappyd.errors import ChappyError, ExitStatus


def add_config_arguments(parser: argparse.ArgumentParser, default: object = None) -> None:
    """--config and --instance (chappyctl passes SUPPRESS, so that an option given
    before the command is not reset by the command's own parser)."""
    parser.add_argument("--config", metavar="PATH", default=default,
                        help="env file to read instead of /etc/chappyd.env")
    parser.add_argument("--instance", metavar="NAME", default=default,
                        help="also read /etc/chappyd/NAME.env; NAME is the default queue")


def load_command_settings(config_path: str | None, instance: str | None,
                          flags: Mapping[str, str | None] | None = None) -> Settings:
    """The settings a command runs with: --config/--instance, and the flags given
    (by flag name; unset ones and non-settings ignored)."""
    given = {flag: str(value) for flag, value in (flags or {}).items()
             if value is not None and flag in OPTIONS_BY_FLAG}
    return load_settings(flags=given, config_path=config_path, instance=instance)


def settings_from_args(args: argparse.Namespace, flags: Mapping[str, str | None]) -> Settings:
    return load_command_settings(args.config, args.instance, flags)


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
