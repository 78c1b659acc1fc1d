"""chappyctl's commands, by name: a table read without importing any command.

Like pip's ``commands_dict``: `chappyctl --help` and typo suggestions come from this
table alone, and only the command being run is imported.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chappyd.cli.ctl.base import Command


@dataclass(frozen=True, slots=True)
class CommandInfo:
    module: str
    class_name: str
    summary: str


COMMANDS: dict[str, CommandInfo] = {
    "status": CommandInfo("status", "Status", "queues and live workers"),
    "push": CommandInfo("push", "Push", "push a job; prints its id"),
    "failed": CommandInfo("inspect", "Failed", "list failed jobs, newest first"),
    "show": CommandInfo("inspect", "Show", "show one job in any state"),
    "retry": CommandInfo("repair", "Retry", "put failed jobs back to ready, attempts reset"),
    "forget": CommandInfo("repair", "Forget", "delete failed jobs by id"),
    "flush": CommandInfo("repair", "Flush", "delete all failed jobs (of a queue)"),
    "clear": CommandInfo("repair", "Clear", "delete the ready and delayed jobs of a queue"),
    "pause": CommandInfo("pause", "Pause", "stop workers from reserving a queue's jobs"),
    "resume": CommandInfo("pause", "Resume", "let workers reserve a paused queue again"),
    "make:job": CommandInfo("make_job", "MakeJob", "write a new Job class file"),
    "queue:migration": CommandInfo("schema", "Migration", "print the SQL schema"),
    "migrate": CommandInfo("schema", "Migrate", "create or upgrade the schema"),
    "schedule:list": CommandInfo("schedule", "ScheduleList",
                                 "periodic jobs with their next and last run"),
    "schedule:test": CommandInfo("schedule", "ScheduleTest",
                                 "push one run of a periodic job now"),
    "web": CommandInfo("web", "Web", "serve the web dashboard"),
}

#: Laravel's artisan names, for people who come from there.
ALIASES: dict[str, str] = {
    "queue:failed": "failed",
    "queue:retry": "retry",
    "queue:forget": "forget",
    "queue:flush": "flush",
    "queue:clear": "clear",
    "queue:pause": "pause",
    "queue:resume": "resume",
    "queue:continue": "resume",
    "queue:push": "push",
    "queue:status": "status",
}


def canonical_name(name: str) -> str | None:
    """The command `name` runs, resolving aliases; None when there is none."""
    if name in COMMANDS:
        return name
    return ALIASES.get(name)


def create_command(name: str) -> Command:
    """Import the module of command `name` (canonical) and instantiate it."""
    info = COMMANDS[name]
    module = importlib.import_module(f"chappyd.cli.ctl.{info.module}")
    command: Command = getattr(module, info.class_name)(name, info.summary)
    return command


def similar_command(name: str) -> str | None:
    """The closest known command, to suggest after a typo."""
    matches = difflib.get_close_matches(name, [*COMMANDS, *ALIASES], n=1, cutoff=0.6)
    return matches[0] if matches else None


def commands_help() -> str:
    """The command list for `chappyctl --help`."""
    aliases: dict[str, list[str]] = {}
    for alias, target in ALIASES.items():
        aliases.setdefault(target, []).append(alias)
    lines = ["commands:"]
    for name, info in COMMANDS.items():
        extra = f" (also {', '.join(aliases[name])})" if name in aliases else ""
        lines.append(f"  {name:<17} {info.summary}{extra}")
    lines.append("")
    lines.append("Run `chappyctl COMMAND --help` for a command's options.")
    return "\n".join(lines)
