"""No-op jobs for the benchmarks: they only leave a timestamp where the harness reads it.

Noop appends time.time() as 8 bytes to $BENCH_DONE_FILE (one O_APPEND write, like the
peer harness's mark_done); Lat writes (sent, started) to the $BENCH_LAT_FIFO pipe.
"""

from __future__ import annotations

import os
import struct
import time

from chappyd import Job

_fds: dict[str, int] = {}


def _fd(variable: str, flags: int) -> int:
    if variable not in _fds:
        _fds[variable] = os.open(os.environ[variable], flags)
    return _fds[variable]


class Noop(Job):
    queue = "bench"

    def handle(self) -> None:
        os.write(_fd("BENCH_DONE_FILE", os.O_WRONLY | os.O_APPEND),
                 struct.pack("<d", time.time()))


class Lat(Job):
    queue = "bench"

    def handle(self) -> None:
        started = time.time()
        os.write(_fd("BENCH_LAT_FIFO", os.O_WRONLY), struct.pack("<dd", self.data["sent"], started))
