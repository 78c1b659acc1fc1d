"""The Job base class and the registry of runnable jobs.

A payload (payloads.py) only ever selects a class that was registered from
CHAPPY_JOBS: it never makes the worker import or call anything.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import time
import traceback
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar

from chappyd.attempts import resolve_max_attempts
from chappyd.config import configured_settings
from chappyd.errors import ChappyError, ConfigError, UnknownJob
from chappyd.limits import check_limit_attributes, limit_fields
from chappyd.payloads import decode_payload
from chappyd.unique import check_unique_attributes, job_key
from chappyd.validate import check_job_class

if TYPE_CHECKING:
    from chappyd.config import Settings
    from chappyd.drivers.base import Reservation
    from chappyd.manager import QueueManager

#: A backoff used when a job does not define one: 2, 4, 8 ... seconds, at most 5 minutes.
DEFAULT_BACKOFF_CAP_S = 300


class Job:
    """Subclass it and define ``handle()``; see docs/design.md §2 for the contract.

    Inside ``handle()``: ``self.data`` (the payload's data), ``self.job_id``,
    ``self.attempts`` (this attempt included), ``self.payload`` (the whole payload) and
    ``self.scheduled_for`` (the tick of a periodic job's run, else None).
    """

    name: ClassVar[str]
    queue: ClassVar[str] = "default"
    tries: ClassVar[int | None] = None
    timeout: ClassVar[float | None] = None
    # periodic jobs: a cron expression makes the masters serving `queue` enqueue it
    schedule: ClassVar[str | None] = None
    timezone: ClassVar[str | None] = None  # IANA name; None: CHAPPY_TIMEZONE
    catchup: ClassVar[str] = "latest"  # after downtime: "latest", "none" or "all"
    schedule_data: ClassVar[dict[str, Any]] = {}
    #: data fields whose values make the unique key (True: all of data; False: none)
    unique: ClassVar[bool | tuple[str, ...]] = False
    #: a pushed copy is refused while the holder waits ("started") or also runs ("done")
    unique_until: ClassVar[str] = "done"
    #: at most this many running at once, on every host together (None: no limit)
    concurrency: ClassVar[int | None] = None
    #: at most this many starts per second, minute or hour: "N/s", "N/m", "N/h"
    rate: ClassVar[str | None] = None
    #: a data field: the limits count per value of it (None: per job name)
    limit_by: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = f"{cls.__module__}.{cls.__qualname__}"
        check_unique_attributes(cls)
        check_limit_attributes(cls)

    def __init__(
        self,
        data: dict[str, Any] | None = None,
        delay: float = 0,
        max_attempts: int | None = None,
    ) -> None:
        self.data: dict[str, Any] = dict(data or {})
        self._delay = delay
        self._max_attempts = max_attempts
        self.job_id: str | None = None
        self.attempts = 0
        self.payload: dict[str, Any] = {}

    @property
    def scheduled_for(self) -> datetime | None:
        """The tick this run is for (aware UTC), None when it was not a scheduled run."""
        value = self.payload.get("scheduled_for")
        if not isinstance(value, int | float) or isinstance(value, bool):
            return None
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):  # a producer's nonsense: no tick
            return None

    # -- the seed's interface -------------------------------------------------
    def handle(self) -> None:
        raise NotImplementedError(f"{type(self).name} does not define handle()")

    def backoff(self) -> int | float | list[int | float]:
        """Seconds before attempt 2, 3, 4...; from a list, the last value repeats."""
        return min(2**self.attempts, DEFAULT_BACKOFF_CAP_S)

    def delay(self) -> float:
        return self._delay

    def max_attempts(self) -> int:
        """The constructor's max_attempts, else `tries`, else MAX_ATTEMPTS (attempts.py)."""
        return resolve_max_attempts(self._max_attempts, self.tries,
                                    configured_settings().max_attempts)

    def to_payload(self) -> dict[str, Any]:
        payload = {
            **self.payload,
            "job": type(self).name,
            "data": self.data,
            "available_at": time.time() + self.delay(),
            "max_attempts": self.max_attempts(),
        }
        cls = type(self)
        if cls.unique:
            payload["unique_key"] = job_key(cls.name, cls.unique, self.data)
            payload["unique_until"] = cls.unique_until
        payload.update(limit_fields(cls, self.data))
        return payload

    # -- dispatching ------------------------------------------------------------
    @classmethod
    def dispatch(
        cls,
        data: dict[str, Any] | None = None,
        queue: str | None = None,
        delay: float = 0,
        max_attempts: int | None = None,
        manager: QueueManager | None = None,
        conn: object | None = None,
    ) -> str:
        """Push this job; returns its id. Uses the process's default QueueManager.
        `conn`: push inside the caller's transaction (QueueManager.push_many)."""
        from chappyd.manager import default_manager

        qm = manager or default_manager()
        return qm.dispatch(cls, data, queue=queue, delay=delay, max_attempts=max_attempts,
                           conn=conn)


# ---------------------------------------------------------------- registry


class RegistryError(ChappyError):
    """The jobs cannot be loaded: a module that does not import, a bad class attribute,
    two classes with one name. The message names the module or the class."""


class Registry:
    """The jobs a worker may run, by name."""

    def __init__(self) -> None:
        self._jobs: dict[str, type[Job]] = {}

    def __contains__(self, name: object) -> bool:
        return name in self._jobs

    def __len__(self) -> int:
        return len(self._jobs)

    def names(self) -> list[str]:
        return sorted(self._jobs)

    def add(self, cls: type[Job]) -> None:
        """Register `cls`; its attributes are checked here, at import, so that a bad
        `timeout` or `queue` is refused at start rather than failing every attempt."""
        try:
            check_job_class(cls)
        except ValueError as exc:
            raise RegistryError(f"class {_where(cls)}: {exc}") from None
        existing = self._jobs.get(cls.name)
        if existing is not None and existing is not cls:
            raise RegistryError(
                f"job name {cls.name!r} is used by both {_where(existing)} and {_where(cls)}"
            )
        self._jobs[cls.name] = cls

    def get(self, name: str) -> type[Job]:
        try:
            return self._jobs[name]
        except KeyError:
            raise UnknownJob(f"{name!r} is not a registered job (see CHAPPY_JOBS)") from None

    def job_for(self, reservation: Reservation) -> Job:
        """The job a reservation holds, ready to run: its class instantiated with the
        payload's data, job_id, attempts and payload set. Raises InvalidPayload or
        UnknownJob (a payload that cannot run, now or ever)."""
        payload = decode_payload(reservation.payload)
        cls = self.get(payload["job"])
        job = cls(payload.get("data") or {})
        job.job_id, job.attempts, job.payload = reservation.id, reservation.attempts, payload
        return job

    def load(self, modules: Iterable[str]) -> None:
        """Import `modules` (packages recursively) and register the Job subclasses
        defined in them. Raises RegistryError naming the module that failed, the
        exception and the line."""
        imported: set[str] = set()
        for name in modules:
            imported.update(_import_tree(name))
        for cls in _all_subclasses(Job):
            if cls.__module__ in imported:
                self.add(cls)


def _where(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _import_tree(name: str) -> Iterator[str]:
    module = _import(name)
    yield module.__name__
    search_path = getattr(module, "__path__", None)
    if search_path is None:
        return
    failed: list[str] = []
    for info in pkgutil.walk_packages(search_path, prefix=f"{module.__name__}.",
                                      onerror=failed.append):
        yield _import(info.name).__name__
    if failed:  # walk_packages imports subpackages itself; make their error ours
        _import(failed[0])


def _import(name: str) -> ModuleType:
    # SystemExit too: a module calling sys.exit() at import must not end the daemon
    # with its status and no message
    try:
        return importlib.import_module(name)
    except (Exception, SystemExit) as exc:
        raise RegistryError(f"cannot import {name}: {describe_exception(exc)}") from None


def describe_exception(exc: BaseException) -> str:
    """``KeyError: 'X' (app/jobs/mail.py line 12)``: the class, the message and the
    innermost line of user code that raised it."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if isinstance(exc, SystemExit):
        text = f"SystemExit({exc.code!r}) at import"
    elif isinstance(exc, SyntaxError):
        text = f"{type(exc).__name__}: {exc.msg}"  # its str() repeats file and line
    where = _raising_line(exc)
    return f"{text} ({where})" if where else text


def _raising_line(exc: BaseException) -> str | None:
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{_shown_path(exc.filename)} line {exc.lineno}"
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not f.filename.startswith("<frozen")
              and not f.filename.startswith(_STDLIB_IMPORT) and f.filename != __file__]
    if not frames:
        return None
    last = frames[-1]
    return f"{_shown_path(last.filename)} line {last.lineno}"


def _shown_path(path: str) -> str:
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return path
    return path if relative.startswith("..") else relative


_STDLIB_IMPORT = os.path.dirname(importlib.__file__)


def _all_subclasses(cls: type[Job]) -> Iterator[type[Job]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_subclasses(sub)


def load_registry(settings: Settings) -> Registry:
    """The registry from CHAPPY_JOBS; a module that does not import or a bad class
    attribute is a config error (78) naming the module or the class."""
    registry = Registry()
    try:
        registry.load(settings.jobs)
    except RegistryError as exc:
        raise ConfigError("CHAPPY_JOBS", ",".join(settings.jobs), settings.source("CHAPPY_JOBS"),
                          f"{exc}{import_hint(exc)}") from None
    return registry


def import_hint(exc: BaseException) -> str:
    """For the newcomer's `No module named 'app'`: where Python looked."""
    causes = (exc, exc.__cause__, exc.__context__)
    if not any(isinstance(cause, ModuleNotFoundError) for cause in causes):
        return ""
    where = os.environ.get("PYTHONPATH", "")
    if os.getcwd() in where.split(os.pathsep):
        return ""  # the working directory is searched already: the hint would mislead
    return (f" (jobs are imported from PYTHONPATH={where!r} and the installed packages, not "
            f"from the working directory: to import them from here, PYTHONPATH={os.getcwd()})")
