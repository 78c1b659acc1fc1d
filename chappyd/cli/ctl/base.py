"""What every chappyctl command shares: the Command shape, the Context it runs in
(settings and a driver, both opened on first use) and checks of argument values."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from typing import IO, Any, TypeVar

from chappyd import validate as v
from chappyd.cli.common import load_command_settings
from chappyd.cli.ctl.contact import within_deadline
from chappyd.config import Settings
from chappyd.drivers import open_driver
from chappyd.drivers.base import Driver
from chappyd.errors import ChappyError, ExitStatus

T = TypeVar("T")

#: How long a command waits for another process's SQLite write lock: with Python's
#: start-up and the first contact, a command answers within 10 s even on a locked file.
LOCK_WAIT_S = 7.0


class Refused(ChappyError):
    """The command will not do what was asked (exit 1); nothing was changed."""


class Command:
    """One chappyctl command: declares its arguments, runs, returns an exit status."""

    def __init__(self, name: str, summary: str) -> None:
        self.name, self.summary = name, summary

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Declare the command's arguments on its own parser."""

    def run(self, args: argparse.Namespace, ctx: Context) -> int:
        raise NotImplementedError


class Context:
    """Where a command runs: its configuration, backend and standard streams."""

    def __init__(self, config_path: str | None, instance: str | None,
                 stdin: IO[str] | None = None, stdout: IO[str] | None = None,
                 stderr: IO[str] | None = None) -> None:
        self.config_path, self.instance = config_path, instance
        self.stdin = stdin or sys.stdin
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self._settings: Settings | None = None
        self._driver: Driver | None = None

    @property
    def settings(self) -> Settings:
        """Loaded on first use: `make:job` works even where the config is broken."""
        if self._settings is None:
            self._settings = load_command_settings(self.config_path, self.instance)
            for warning in self._settings.warnings:
                print(f"chappyctl: warning: {warning}", file=self.stderr)
        return self._settings

    def driver(self, probe: bool = True, inspect: bool = False) -> Driver:
        """The configured backend. With `probe`, it has answered a first cheap query
        within the contact deadline (BackendUnavailable otherwise). Commands that may
        run before the schema exists (`migrate`) pass probe=False and bound their own
        first call with `first_contact`. With `inspect`, looking changes nothing: no
        schema migration, and no SQLite file or directory is created."""
        if self._driver is None:
            settings = self.settings
            if inspect:
                settings = dataclasses.replace(settings, auto_migrate=False)
            driver = open_driver(settings, read_only=inspect, busy_timeout_s=LOCK_WAIT_S)
            self._driver = driver
            if probe:
                self.first_contact(driver.paused_queues)
        return self._driver

    def first_contact(self, call: Callable[[], T]) -> T:
        return within_deadline(call, self.settings.backend_description)

    def close(self) -> None:
        if self._driver is not None:
            self._driver.close()
            self._driver = None

    # -- output -------------------------------------------------------------------
    def out(self, text: str = "") -> None:
        print(text, file=self.stdout)

    def note(self, text: str) -> None:
        """A remark for a person, on stderr, so that stdout stays parseable."""
        print(f"chappyctl: {text}", file=self.stderr)

    def emit_json(self, document: Any) -> None:
        self.stdout.write(standard_json(document, indent=2) + "\n")


def standard_json(document: Any, indent: int | None = None) -> str:
    """JSON any parser reads: no NaN or Infinity (ValueError), valid UTF-8 only
    (UnicodeEncodeError on a lone surrogate)."""
    text = json.dumps(document, indent=indent, ensure_ascii=False, allow_nan=False)
    text.encode("utf-8")
    return text


# ---------------------------------------------------------------- argument values
# A bad argument value is the operator's typo, not the host's configuration: exit 1
# naming the argument (78 stays for configuration files, the environment, --config
# and --instance, which systemd must not restart on). Values are taken as text and
# checked here rather than with argparse `type=`, whose failures would be usage
# errors (2) with argparse's wording.


class BadValue(ChappyError):
    """An argument's value is invalid (exit 1); nothing was changed."""

    def __init__(self, name: str, raw: str, problem: str) -> None:
        self.name, self.raw, self.problem = name, raw, problem
        super().__init__(f"{name}={raw!r}: {problem}")


def checked(name: str, raw: str, parse: Callable[[str], T]) -> T:
    try:
        return parse(raw)
    except ValueError as exc:
        raise BadValue(name, raw, str(exc)) from None


def queue_name(raw: str) -> str:
    return v.validate_queue_name(raw)


#: Upper bounds of chappyctl's numbers (docs/bad-input.md): far above any real use,
#: far below what a backend, a datetime or a 64-bit column overflows on.
MAX_DELAY_S = 10 * 366 * 86400  # ten years
MAX_ATTEMPTS = 1_000_000
MAX_LIMIT = 1_000_000
MAX_JOB_ID = 2**63 - 1


positive_int = v.argument_count(MAX_LIMIT)
attempts_int = v.argument_count(MAX_ATTEMPTS)
non_negative_seconds = v.seconds_from_zero(MAX_DELAY_S, "ten years")


def job_id(raw: str) -> str:
    """A job id: ASCII digits that fit a signed 64-bit integer, as every backend stores."""
    if not (raw.isascii() and raw.isdigit()) or int(raw) > MAX_JOB_ID:
        raise ValueError("a job id is a whole number from 0 to 9223372036854775807")
    return str(int(raw))


def job_ids(raws: list[str]) -> list[str]:
    """Every id checked before any is used: one bad id of five changes nothing."""
    return unique([checked("ID", raw, job_id) for raw in raws])


def optional_queue(flag: str, raw: str | None) -> str | None:
    return None if raw is None else checked(flag, raw, queue_name)


def unique(ids: list[str]) -> list[str]:
    """Ids in the order given, each once."""
    return list(dict.fromkeys(ids))


OK = int(ExitStatus.OK)
FAILURE = int(ExitStatus.FAILURE)


class Misuse(ChappyError):
    """Arguments argparse cannot check alone (`retry 5 --all`): a usage error, exit 2."""

    exit_status = ExitStatus.USAGE


def plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")
