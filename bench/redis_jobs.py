"""The benchmark's jobs: a no-op that stamps its finish time, and a latency probe.

Each writes one 8-byte double with one O_APPEND write(2), so the harness can count
finished jobs by file size without any round trip to the backend.
"""

from __future__ import annotations

import os
import struct
import time

from chappyd import Job

_fds: dict[str, int] = {}


def _stamp(env_key: str, value: float) -> None:
    path = os.environ[env_key]
    fd = _fds.get(path)
    if fd is None:
        fd = _fds[path] = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, struct.pack("d", value))


class Noop(Job):
    name = "bench.Noop"
    queue = "bench"

    def handle(self) -> None:
        _stamp("BENCH_DONE", time.time())


class Probe(Job):
    """Latency from just before the push (data.t) to the first statement of handle()."""

    name = "bench.Probe"
    queue = "bench"

    def handle(self) -> None:
        _stamp("BENCH_LAT", time.time() - self.data["t"])


def read_doubles(path: str) -> list[float]:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        return []
    return [v for (v,) in struct.iter_unpack("d", data[: len(data) // 8 * 8])]
