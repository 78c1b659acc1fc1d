"""`chappyctl`: push, inspect and repair queues (docs/design.md §6).

Two-stage parsing, as pip does: the global options and the command name first, then
only that command's module is imported and parses the rest of the line.
"""

from __future__ import annotations

import argparse
import sys

from chappyd import __version__
from chappyd.cli.common import add_config_arguments, run_reporting_errors
from chappyd.cli.ctl import canonical_name, commands_help, create_command, similar_command
from chappyd.cli.ctl.base import Command, Context
from chappyd.errors import ExitStatus

PROG = "chappyctl"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, usage=f"{PROG} [--config=PATH] [--instance=NAME] COMMAND [ARGS...]",
        description="Push, inspect and repair chappyd queues.",
        epilog=commands_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_config_arguments(parser, argparse.SUPPRESS)
    parser.add_argument("command", metavar="COMMAND", nargs="?", help=argparse.SUPPRESS)
    parser.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def command_parser(command: Command) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"{PROG} {command.name}",
                                     description=command.summary)
    command.add_arguments(parser)
    # SUPPRESS: an option not repeated after the command keeps its global value
    add_config_arguments(parser, argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    top = parser.parse_args(argv)
    if top.command is None:
        parser.print_help(sys.stderr)
        return int(ExitStatus.USAGE)
    if top.command == "help":  # `chappyctl help [COMMAND]`, as git and pip take it
        return print_help(parser, top.args)
    name = canonical_name(top.command)
    if name is None:
        guess = similar_command(top.command)
        hint = f"; did you mean {guess!r}?" if guess else f"; see {PROG} --help"
        parser.error(f"unknown command {top.command!r}{hint}")
    command = create_command(name)
    args = command_parser(command).parse_args(top.args)
    ctx = Context(config_path=getattr(args, "config", getattr(top, "config", None)),
                  instance=getattr(args, "instance", getattr(top, "instance", None)))
    return run_reporting_errors(PROG, lambda: run_and_close(command, args, ctx))


def print_help(parser: argparse.ArgumentParser, args: list[str]) -> int:
    name = canonical_name(args[0]) if args else None
    if args and name is None:
        parser.error(f"unknown command {args[0]!r}; see {PROG} --help")
    if name is None:
        parser.print_help()
    else:
        command_parser(create_command(name)).print_help()
    return int(ExitStatus.OK)


def run_and_close(command: Command, args: argparse.Namespace, ctx: Context) -> int:
    try:
        return command.run(args, ctx)
    finally:
        ctx.close()


if __name__ == "__main__":
    sys.exit(main())
