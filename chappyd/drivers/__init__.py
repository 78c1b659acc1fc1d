"""Backends behind one interface (see base.py). Backend libraries are imported lazily,
in their own driver module only."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chappyd.config import Settings
    from chappyd.drivers.base import Driver


def open_driver(settings: Settings) -> Driver:
    """A driver for the configured backend. It connects lazily, on first use."""
    if settings.backend == "redis":
        from chappyd.drivers.redis import RedisDriver

        return RedisDriver(settings)
    if settings.backend == "postgres":
        from chappyd.drivers.postgres import PostgresDriver

        return PostgresDriver(settings)
    from chappyd.drivers.sqlite import SqliteDriver

    return SqliteDriver(settings)
