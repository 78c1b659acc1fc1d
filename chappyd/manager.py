"""QueueManager: the producer's API (push, push_many, dispatch)."""

from __future__ import annotations

import json
import os
import threading
import time
import weakref
from collections.abc import Sequence
from typing import Any

from chappyd.attempts import resolve_max_attempts
from chappyd.config import Settings, configured_settings, validate_queue_name
from chappyd.drivers import open_driver
from chappyd.drivers.base import Driver, NewJob
from chappyd.jobs import Job, Registry, load_registry
from chappyd.limits import payload_limit
from chappyd.payloads import encode_payload, payload_available_at
from chappyd.unique import payload_unique

_default_manager: QueueManager | None = None
_managers: weakref.WeakSet[QueueManager] = weakref.WeakSet()
_default_lock = threading.Lock()

def default_manager() -> QueueManager:
    global _default_manager
    if _default_manager is None:
        with _default_lock:
            if _default_manager is None:
                _default_manager = QueueManager()
    return _default_manager


def dispatch(
    job: type[Job] | str,
    data: dict[str, Any] | None = None,
    queue: str | None = None,
    delay: float = 0,
    max_attempts: int | None = None,
    conn: object | None = None,
) -> str:
    """Push a job through the process's default QueueManager; returns its id.
    `conn`: see QueueManager.push_many."""
    return default_manager().dispatch(job, data, queue=queue, delay=delay,
                                      max_attempts=max_attempts, conn=conn)


class QueueManager:
    """Pushes jobs to the configured backend. Opens its connection on first use."""

    def __init__(
        self,
        settings: Settings | None = None,
        registry: Registry | None = None,
        driver: Driver | None = None,
    ) -> None:
        self.settings = settings or configured_settings()
        #: None until first needed: then filled from CHAPPY_JOBS, once (a web app's
        #: dispatch by name applies the class's queue and tries, as the daemon's would)
        self._registry = registry
        self._registry_lock = threading.Lock()
        self._driver = driver
        #: one connection, many threads (a threaded web server's views all push through
        #: the default manager): a driver call holds it from request to reply
        self._lock = threading.Lock()
        self._valid_queues: set[str] = set()
        _managers.add(self)

    @property
    def driver(self) -> Driver:
        if self._driver is None:
            with self._lock:
                if self._driver is None:
                    self._driver = open_driver(self.settings)
        return self._driver

    @property
    def registry(self) -> Registry:
        """The jobs known here by name: the one given, else CHAPPY_JOBS's, imported
        on first use. A module that fails to import is a ConfigError naming it."""
        if self._registry is None:
            with self._registry_lock:
                if self._registry is None:
                    self._registry = load_registry(self.settings)
        return self._registry

    def _after_fork(self) -> None:
        # another thread may have held a lock at fork(): it never lets go in the child
        self._lock = threading.Lock()
        self._registry_lock = threading.Lock()

    def push(self, queue: str, payload: dict[str, Any] | str,
             conn: object | None = None) -> str:
        """Push one payload (a dict, or JSON text) onto `queue`; returns the id. A
        payload whose "unique_key" another job holds creates nothing and returns that
        job's id (an ExistingId). `conn`: see push_many."""
        return self.push_many(queue, [payload], conn=conn)[0]

    def push_many(self, queue: str, payloads: Sequence[dict[str, Any] | str],
                  conn: object | None = None) -> list[str]:
        """Push payloads onto `queue` in one round trip; returns their ids in order.

        `conn`: the caller's open connection to the queue's own database (psycopg 3 or
        psycopg2 for PostgreSQL, sqlite3 for SQLite). The jobs are then written inside
        the caller's transaction and exist only if it commits; chappyd neither commits
        nor rolls back. ValueError for a connection to another database, a closed one,
        or the Redis backend (docs/transactions.md)."""
        if queue not in self._valid_queues:
            validate_queue_name(queue)
            if len(self._valid_queues) < 1024:
                self._valid_queues.add(queue)
        now = time.time()
        jobs = [self._new_job(payload, now) for payload in payloads]
        if not jobs and conn is None:
            return []
        driver = self.driver
        with self._lock:
            return driver.push_many(queue, jobs, conn=conn)

    def dispatch(
        self,
        job: type[Job] | str,
        data: dict[str, Any] | None = None,
        queue: str | None = None,
        delay: float = 0,
        max_attempts: int | None = None,
        conn: object | None = None,
    ) -> str:
        """Push `job` (a Job class or any job name) with `data`; returns the id.

        By class, or by a name registered here, the class's `queue` and `tries` apply.
        `conn`: see push_many.
        """
        cls: type[Job] | None
        if isinstance(job, str):
            cls = self.registry.get(job) if job in self.registry else None
            name = job
        else:
            cls, name = job, job.name
        if cls is not None:
            # resolved here so that this manager's settings, not a second config load, count
            attempts = resolve_max_attempts(max_attempts, cls.tries, self.settings.max_attempts)
            instance = cls(data, delay=delay, max_attempts=attempts)
            payload = instance.to_payload()
            target = queue or cls.queue
        else:
            payload = {
                "job": name,
                "data": dict(data or {}),
                "available_at": time.time() + delay,
                "max_attempts": resolve_max_attempts(max_attempts, None,
                                                     self.settings.max_attempts),
            }
            target = queue or "default"
        return self.push(target, payload, conn=conn)

    def close(self) -> None:
        with self._lock:
            if self._driver is not None:
                self._driver.close()
                self._driver = None

    def _new_job(self, payload: dict[str, Any] | str, now: float) -> NewJob:
        """Raises ValueError for a payload that is not standard JSON (NaN, Infinity, a
        lone surrogate): accepted, it would break every reader later."""
        if isinstance(payload, str):
            text = payload
            try:
                decoded = json.loads(payload, parse_constant=_refuse_constant)
            except ValueError as exc:
                if isinstance(exc, _NonStandard):
                    raise
                decoded = None
        else:
            try:
                text = encode_payload(payload)
            except ValueError as exc:
                raise ValueError(f"payload is not standard JSON: {exc}") from None
            decoded = payload
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("payload is not valid UTF-8 (a lone surrogate)") from None
        if not isinstance(decoded, dict):
            return NewJob(text, now)
        unique = payload_unique(decoded)
        limit = payload_limit(decoded)
        if unique is None and limit is None:
            return NewJob(text, payload_available_at(decoded, now))
        return NewJob(text, payload_available_at(decoded, now),
                      unique.key if unique else None, unique.until if unique else None, limit)


class _NonStandard(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _NonStandard(f"payload is not standard JSON: {name}")


def _reset_locks_after_fork() -> None:
    for manager in list(_managers):
        manager._after_fork()


os.register_at_fork(after_in_child=_reset_locks_after_fork)
