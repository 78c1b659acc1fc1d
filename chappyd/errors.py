"""The one error tree of chappyd, and the process exit statuses.

Library errors (psycopg, redis, OSError) are converted into these at the edge of the
module that knows them, so that the CLI can print one line for any ChappyError.
"""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0
    FAILURE = 1
    USAGE = 2  # argparse's own status for a malformed command line
    SOFTWARE = 70  # EX_SOFTWARE: a bug, or children that cannot start at all
    CONFIG = 78  # EX_CONFIG: systemd's RestartPreventExitStatus=78 stops the restart loop


class ChappyError(Exception):
    """Anything chappyd can explain in one line to a user."""

    exit_status: ExitStatus = ExitStatus.FAILURE


class ConfigError(ChappyError):
    """A configuration value is invalid: names the key, where it came from and why."""

    exit_status = ExitStatus.CONFIG

    def __init__(self, key: str, value: str | None, source: str, problem: str) -> None:
        self.key, self.value, self.source, self.problem = key, value, source, problem
        shown = "" if value is None else f"={value!r}"
        super().__init__(f"{key}{shown} (from {source}): {problem}")


class JobClassError(ChappyError):
    """A Job class attribute is invalid: names the class (exit 78, found at import)."""

    exit_status = ExitStatus.CONFIG


class BackendUnavailable(ChappyError):
    """The backend cannot be reached; `backend` is a redacted description, never a password."""

    def __init__(self, backend: str, reason: str) -> None:
        self.backend, self.reason = backend, reason
        super().__init__(f"cannot reach {backend}: {reason}")


class BackendUnusable(ChappyError):
    """A backend that can never work as configured (a directory for a database file, a
    read-only file, a file that is not SQLite): a configuration error, exit 78, and not
    an outage to wait out. Deliberately not a BackendUnavailable."""

    exit_status = ExitStatus.CONFIG

    def __init__(self, backend: str, reason: str) -> None:
        self.backend, self.reason = backend, reason
        super().__init__(f"{backend} can never work: {reason}")


class NoQueueDatabase(ChappyError):
    """Inspection of an SQLite file that does not exist: looking creates nothing."""

    def __init__(self, path: str) -> None:
        super().__init__(f"no queue database at {path} (check DATABASE_URL; "
                         "chappyd or `chappyctl migrate` creates it)")


class SchemaMissing(BackendUnavailable):
    """The backend answers but has no chappyd schema (CHAPPY_AUTO_MIGRATE=0 and no
    `chappyctl migrate` yet). A BackendUnavailable so that the daemon waits for it."""

    def __init__(self, backend: str, reason: str) -> None:
        BackendUnavailable.__init__(self, backend, reason)
        self.args = (f"{backend} has no chappyd schema ({reason}): run `chappyctl migrate`, "
                     "or set CHAPPY_AUTO_MIGRATE=1",)


class JobNotFound(ChappyError):
    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"no job with id {job_id}")


class InvalidPayload(ChappyError):
    """A payload that is not a JSON object naming a job."""


class UnknownJob(ChappyError):
    """A payload names a job that is not in the registry."""


class Interrupt(BaseException):
    """Stops a running job. A BaseException so that `except Exception` in user code
    cannot swallow a timeout or a stop."""


class JobTimeout(Interrupt):
    """The job ran past its timeout."""
