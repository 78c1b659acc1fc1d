"""`chappyctl make:job Name`: write a Job class file to fill in, as Laravel's make:job."""

from __future__ import annotations

import argparse
import keyword
import re
from pathlib import Path

from chappyd.cli.ctl.base import OK, Command, Context, Refused, checked

TEMPLATE = '''\
"""{name}: say here what this job does.

Push it from Python with ``{name}.dispatch({{"user_id": 42}})``, or from a shell:

    chappyctl push {dotted} --data '{{"user_id": 42}}'

Workers run it when its module is listed in CHAPPY_JOBS.
"""

from __future__ import annotations

from chappyd import Job


class {name}(Job):
    """Delivery is at least once: make running it twice harmless."""

    # The name producers push; by default "<module>.<class>", here:
    #     {dotted}
    # For payloads pushed by a PHP producer (Chappy.php), name it as they do:
    # name = "App\\\\Jobs\\\\{name}"
    queue = "default"  # where dispatch() pushes it when no queue is given
    tries = None  # attempts before it is failed; None: MAX_ATTEMPTS from the config
    timeout = None  # seconds before an attempt is stopped; None: CHAPPY_JOB_TIMEOUT

    def handle(self) -> None:
        """Do the work. self.data holds the payload's data, self.job_id the id,
        self.attempts this attempt's number (1 on the first run). Raise to fail
        the attempt: it is retried after backoff() while attempts remain, then kept
        as failed for `chappyctl failed` / `retry`."""

    # The seed's other methods; uncomment one to change it.
    #
    # def backoff(self) -> int | list[int]:
    #     """Seconds before attempt 2, 3, 4...; from a list, the last value repeats.
    #     Default: 2, 4, 8 ... seconds, at most 300."""
    #     return [10, 30, 60]
    #
    # def delay(self) -> float:
    #     """Seconds between dispatch and the first attempt (default: the
    #     constructor's delay=, else 0)."""
    #     return 0
    #
    # def max_attempts(self) -> int:
    #     """Attempts in all (default: the constructor's max_attempts=, else
    #     `tries`, else MAX_ATTEMPTS)."""
    #     return 5
    #
    # def to_payload(self) -> dict[str, Any]:  (from typing import Any)
    #     """What is stored: {{"job", "data", "available_at", "max_attempts"}};
    #     keys you add survive a round trip and are in self.payload when it runs."""
    #     return {{**super().to_payload(), "trace_id": "..."}}
'''


def class_name(raw: str) -> str:
    if not raw.isidentifier() or keyword.iskeyword(raw) or not raw[0].isupper():
        raise ValueError("must be a Python class name in CamelCase, e.g. SendWelcomeEmail")
    return raw


def snake_case(name: str) -> str:
    """SendWelcomeEmail -> send_welcome_email, HTTPPing -> http_ping."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name)
    return re.sub(r"_+", "_", spaced).lower()


def dotted_module(directory: Path, module: str) -> str:
    """The import path of the new module, when --dir is a relative package path."""
    parts = [*directory.parts, module]
    if directory.is_absolute() or not all(p.isidentifier() for p in parts):
        return f"<module>.{module}"
    return ".".join(parts)


class MakeJob(Command):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("name", metavar="Name", help="the class name, e.g. SendWelcomeEmail")
        parser.add_argument("--dir", default="app/jobs", metavar="DIR",
                            help="where to write <snake_name>.py (default app/jobs)")

    def run(self, args: argparse.Namespace, ctx: Context) -> int:
        name = checked("Name", args.name, class_name)
        directory = Path(args.dir)
        module = snake_case(name)
        path = directory / f"{module}.py"
        text = TEMPLATE.format(name=name, dotted=f"{dotted_module(directory, module)}.{name}")
        try:
            directory.mkdir(parents=True, exist_ok=True)
            with open(path, "x", encoding="utf-8") as handle:  # "x": never overwrite
                handle.write(text)
            make_package(directory, ctx)
        except FileExistsError:
            raise Refused(f"{path} already exists; not overwriting it") from None
        except OSError as exc:
            raise Refused(f"cannot write {path}: {exc.strerror or exc}") from None
        ctx.out(str(path))
        return OK


def make_package(directory: Path, ctx: Context) -> None:
    """Make `directory` a regular package, so that CHAPPY_JOBS=app.jobs imports the new
    module, and say so when an `app/jobs.py` beside it is hidden from then on (a
    package wins over a module of the same name)."""
    init = directory / "__init__.py"
    if init.exists():
        return
    init.touch()
    sibling = directory.with_suffix(".py")
    if sibling.exists():
        ctx.note(f"warning: {sibling} is now hidden by the package {directory}/: move its "
                 f"classes into {directory}/__init__.py or a module inside it")
