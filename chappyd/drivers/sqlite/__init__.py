"""The embedded SQLite backend: one WAL-mode file, claims in BEGIN IMMEDIATE."""

from chappyd.drivers.sqlite.driver import SqliteDriver

__all__ = ["SqliteDriver"]
