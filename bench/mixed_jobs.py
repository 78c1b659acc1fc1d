"""Jobs for the mixed-workload bench: each appends (kind, sent, started) as three
doubles to $BENCH_MIXED_FILE in one O_APPEND write; Long then sleeps data["sleep_s"]."""

from __future__ import annotations

import os
import struct
import time

from chappyd import Job

_fd: list[int] = []


def _mark(kind: float, sent: float) -> None:
    if not _fd:
        _fd.append(os.open(os.environ["BENCH_MIXED_FILE"], os.O_WRONLY | os.O_APPEND))
    os.write(_fd[0], struct.pack("<ddd", kind, sent, time.time()))


class Short(Job):
    queue = "bench"

    def handle(self) -> None:
        _mark(0.0, float(self.data.get("sent", 0.0)))


class Long(Job):
    queue = "bench"

    def handle(self) -> None:
        _mark(1.0, float(self.data.get("sent", 0.0)))
        time.sleep(float(self.data.get("sleep_s", 1.0)))
