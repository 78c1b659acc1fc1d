"""A job module under which every child crashes in its first idle wait, right after it
said READY, as children did on a row with a string available_at: the master must back
off the respawns (not fork every few milliseconds) and say why."""

from __future__ import annotations

from chappyd.drivers.postgres import PostgresDriver
from chappyd.drivers.redis import RedisDriver
from chappyd.drivers.sqlite import SqliteDriver
from chappyd.jobs import Job


def _crashing_wait(self: object, queues: object, timeout_s: float) -> None:
    raise TypeError("unsupported operand type(s) for -: 'str' and 'float'")


for _driver in (SqliteDriver, PostgresDriver, RedisDriver):
    _driver.wait = _crashing_wait  # type: ignore[method-assign]


class Never(Job):
    def handle(self) -> None:
        pass
