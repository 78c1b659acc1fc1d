"""What the PostgreSQL-specific tests share: bounded waits and opening drivers."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from chappyd.drivers.postgres import PostgresDriver
from tests.conftest import settings_for

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], deadline_s: float, what: str) -> T:
    """Poll `predicate` until it is truthy; fail naming `what` after `deadline_s`."""
    end = time.monotonic() + deadline_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {deadline_s} s waiting for {what}")
        time.sleep(0.02)


def pg_driver(env: dict[str, str], **overrides: str) -> PostgresDriver:
    return PostgresDriver(settings_for(env, **overrides))
