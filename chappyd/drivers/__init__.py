"""Backends behind one interface (see base.py). Backend libraries are imported lazily,
in their own driver module only."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chappyd.config import Settings
    from chappyd.drivers.base import Driver


#: the driver module and the client library of each backend
_MODULES = {"redis": ("chappyd.drivers.redis", "redis"),
            "postgres": ("chappyd.drivers.postgres", "psycopg"),
            "sqlite": ("chappyd.drivers.sqlite",)}


def import_backend(settings: Settings) -> None:
    """Import the configured backend's driver and client library now, without
    connecting. The master does so before its loop starts: the library is imported once
    there for every child anyway (they inherit it through fork), and a client library
    costs 100-150 ms to import, which would otherwise sit inside the first loop turn,
    between the master's start and its first fork."""
    for name in _MODULES.get(settings.backend, _MODULES["sqlite"]):
        importlib.import_module(name)


def open_driver(settings: Settings, read_only: bool = False,
                busy_timeout_s: float | None = None) -> Driver:
    """A driver for the configured backend. It connects lazily, on first use.
    `read_only` (inspection): an SQLite file is opened read-only and never created;
    the server backends are only read by inspection commands anyway. `busy_timeout_s`
    bounds a wait for another process's SQLite lock (a command must answer in time)."""
    if settings.backend == "redis":
        from chappyd.drivers.redis import RedisDriver

        return RedisDriver(settings)
    if settings.backend == "postgres":
        from chappyd.drivers.postgres import PostgresDriver

        return PostgresDriver(settings)
    from chappyd.drivers.sqlite import SqliteDriver

    if busy_timeout_s is None:
        return SqliteDriver(settings, read_only=read_only)
    return SqliteDriver(settings, read_only=read_only, busy_timeout_s=busy_timeout_s)
