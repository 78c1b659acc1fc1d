"""QueueManager: the producer's API (push, push_many, dispatch)."""

from __future__ import annotations

import json
import os
import threading
import time
import weakref
from collections.abc import Sequence
from typing import Any

from chappyd.config import Settings, load_settings, validate_queue_name
from chappyd.drivers import open_driver
from chappyd.drivers.base import Driver, NewJob
from chappyd.jobs import (
    Job,
    Registry,
    encode_payload,
    payload_available_at,
)
from chappyd.limits import payload_limit
from chappyd.unique import payload_unique

_default_manager: QueueManager | None = None
_managers: weakref.WeakSet[QueueManager] = weakref.WeakSet()
_default_lock = threading.Lock()
_default_settings: Settings | None = None


def configured_settings() -> Settings:
    """The process's settings, loaded once from the environment and /etc/chappyd.env."""
    global _default_settings
    if _default_settings is None:
        _default_settings = load_settings()
    return _default_settings


def configured_max_attempts() -> int:
    return configured_settings().max_attempts


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
) -> str:
    """Push a job through the process's default QueueManager; returns its id."""
    return default_manager().dispatch(job, data, queue=queue, delay=delay,
                                      max_attempts=max_attempts)


class QueueManager:
    """Pushes jobs to the configured backend. Opens its connection on first use."""

    def __init__(
        self,
        settings: Settings | None = None,
        registry: Registry | None = None,
        driver: Driver | None = None,
    ) -> None:
        self.settings = settings or configured_settings()
        self.registry = registry or Registry()
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

    def _after_fork(self) -> None:
        # another thread may have held the lock at fork(): it never lets go in the child
        self._lock = threading.Lock()

    def push(self, queue: str, payload: dict[str, Any] | str) -> str:
        """Push one payload (a dict, or JSON text) onto `queue`; returns the id. A
        payload whose "unique_key" another job holds creates nothing and returns that
        job's id (an ExistingId)."""
        return self.push_many(queue, [payload])[0]

    def push_many(self, queue: str, payloads: Sequence[dict[str, Any] | str]) -> list[str]:
        """Push payloads onto `queue` in one round trip; returns their ids in order."""
        if queue not in self._valid_queues:
            validate_queue_name(queue)
            if len(self._valid_queues) < 1024:
                self._valid_queues.add(queue)
        now = time.time()
        jobs = [self._new_job(payload, now) for payload in payloads]
        if not jobs:
            return []
        driver = self.driver
        with self._lock:
            return driver.push_many(queue, jobs)

    def dispatch(
        self,
        job: type[Job] | str,
        data: dict[str, Any] | None = None,
        queue: str | None = None,
        delay: float = 0,
        max_attempts: int | None = None,
    ) -> str:
        """Push `job` (a Job class or any job name) with `data`; returns the id.

        By class, or by a name registered here, the class's `queue` and `tries` apply.
        """
        cls: type[Job] | None
        if isinstance(job, str):
            cls = self.registry.get(job) if job in self.registry else None
            name = job
        else:
            cls, name = job, job.name
        if cls is not None:
            # resolved here so that this manager's settings, not a second config load, count
            attempts = max_attempts or cls.tries or self.settings.max_attempts
            instance = cls(data, delay=delay, max_attempts=attempts)
            payload = instance.to_payload()
            target = queue or cls.queue
        else:
            payload = {
                "job": name,
                "data": dict(data or {}),
                "available_at": time.time() + delay,
                "max_attempts": max_attempts or self.settings.max_attempts,
            }
            target = queue or "default"
        return self.push(target, payload)

    def close(self) -> None:
        with self._lock:
            if self._driver is not None:
                self._driver.close()
                self._driver = None

    def _new_job(self, payload: dict[str, Any] | str, now: float) -> NewJob:
        if isinstance(payload, str):
            text = payload
            try:
                decoded = json.loads(payload)
            except ValueError:
                decoded = None
        else:
            text = encode_payload(payload)
            decoded = payload
        if not isinstance(decoded, dict):
            return NewJob(text, now)
        unique = payload_unique(decoded)
        limit = payload_limit(decoded)
        if unique is None and limit is None:
            return NewJob(text, payload_available_at(decoded, now))
        return NewJob(text, payload_available_at(decoded, now),
                      unique.key if unique else None, unique.until if unique else None, limit)


def _reset_locks_after_fork() -> None:
    for manager in list(_managers):
        manager._after_fork()


os.register_at_fork(after_in_child=_reset_locks_after_fork)
