"""The master's way to the backend: a driver opened lazily, closed before every
fork(), and tolerant of outages (docs/design.md §3, §4).

An outage is logged once, calls are retried with backoff, and nothing raises: the
master keeps supervising while the backend is away.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import structlog

from chappyd.config import Settings
from chappyd.drivers import open_driver
from chappyd.drivers.base import Driver
from chappyd.errors import BackendUnavailable

log = structlog.get_logger("chappyd.master")
T = TypeVar("T")

#: Retry delays while the backend is down: first, cap (doubling in between).
RETRY_S = (0.25, 10.0)


class BackendLink:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.outage_since: float | None = None  # monotonic; None while reachable
        self.last_error = ""
        self._driver: Driver | None = None
        self._retry_at = 0.0
        self._backoff_s = RETRY_S[0]

    @property
    def driver(self) -> Driver:
        if self._driver is None:
            self._driver = open_driver(self.settings)
        return self._driver

    def call(self, fn: Callable[[Driver], T]) -> T | None:
        """`fn(driver)`, or None while the backend is down (also between retries)."""
        now = time.monotonic()
        if self.outage_since is not None and now < self._retry_at:
            return None
        try:
            result = fn(self.driver)
        except BackendUnavailable as exc:
            if self.outage_since is None:
                self.outage_since = now
                log.error("backend_unavailable", error=str(exc))
            self.last_error = str(exc)
            self._retry_at = now + self._backoff_s
            self._backoff_s = min(self._backoff_s * 2, RETRY_S[1])
            self.close()  # a broken connection is not reused; the next call reconnects
            return None
        if note := self._driver.take_adoption_note():
            log.warning("chappy_php_table_adopted", note=note)
        if self.outage_since is not None:
            log.info("backend_available", outage_s=round(now - self.outage_since, 3))
            self.outage_since, self._backoff_s = None, RETRY_S[0]
        return result

    def close(self) -> None:
        """Drop the connection (before fork(), after an error, on a reload)."""
        if self._driver is not None:
            try:
                self._driver.close()
            except Exception as exc:  # closing a broken connection may fail; it is gone
                log.debug("driver_close_failed", error=str(exc))
            self._driver = None
