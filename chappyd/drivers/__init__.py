"""Backends behind one interface (see base.py). A backend's driver module and client
library are imported when a driver is opened (driver_class), not with chappyd."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chappyd.config import Settings
    from chappyd.drivers.base import Driver


#: each backend's driver module, its class and its client library
_DRIVERS = {"redis": ("chappyd.drivers.redis", "RedisDriver", "redis"),
            "postgres": ("chappyd.drivers.postgres", "PostgresDriver", "psycopg"),
            "sqlite": ("chappyd.drivers.sqlite", "SqliteDriver", "sqlite3")}


def driver_class(settings: Settings) -> type[Driver]:
    """The configured backend's driver class, imported now with its client library
    (nothing connects). A client library costs 100-150 ms to import: the master calls
    this before its loop starts, so that the import does not sit between its start and
    its first fork (the children inherit it through fork)."""
    module, name, library = _DRIVERS[settings.backend]
    importlib.import_module(library)
    driver: type[Driver] = getattr(importlib.import_module(module), name)
    return driver


def open_driver(settings: Settings, read_only: bool = False,
                busy_timeout_s: float | None = None) -> Driver:
    """A driver for the configured backend. It connects lazily, on first use.
    `read_only` (inspection): an SQLite file is opened read-only and never created;
    the server backends are only read by inspection commands anyway. `busy_timeout_s`
    bounds a wait for another process's SQLite lock (a command must answer in time)."""
    driver = driver_class(settings)
    if settings.backend != "sqlite":
        return driver(settings)
    if busy_timeout_s is None:
        return driver(settings, read_only=read_only)
    return driver(settings, read_only=read_only, busy_timeout_s=busy_timeout_s)
