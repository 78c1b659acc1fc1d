"""Jobs of the benchmark harness (bench/harness): each leaves one record where the
harness reads it, so that finished jobs are counted and timed from outside, without a
round trip to the backend.

A record is RECORD: kind, sent, started, finished (little-endian doubles, Unix
seconds), appended to $BENCH_RECORDS with one write(2) of 32 bytes (atomic under
O_APPEND, and on a FIFO: PIPE_BUF is larger). `sent` is data["sent"] when the producer
stamped the job (pick-up latency, waits), else 0.
"""

from __future__ import annotations

import os
import struct
import time

from chappyd import Job

RECORD = struct.Struct("<4d")
KIND_NOOP, KIND_5MS, KIND_1S = 0, 1, 2

_fds: dict[str, int] = {}


def _record(job: Job, kind: int, started: float) -> None:
    path = os.environ["BENCH_RECORDS"]
    fd = _fds.get(path)
    if fd is None:
        fd = _fds[path] = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, RECORD.pack(kind, job.data.get("sent", 0.0), started, time.time()))


class Noop(Job):
    queue = "bench"

    def handle(self) -> None:
        _record(self, KIND_NOOP, time.time())


class Sleep5ms(Job):
    """An I/O-like job: 5 ms waiting, no CPU."""

    queue = "bench"

    def handle(self) -> None:
        started = time.time()
        time.sleep(0.005)
        _record(self, KIND_5MS, started)


class Sleep1s(Job):
    """A long job among short ones (the mixed workload, busy children)."""

    queue = "bench"

    def handle(self) -> None:
        started = time.time()
        time.sleep(1.0)
        _record(self, KIND_1S, started)
