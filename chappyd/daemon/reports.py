"""The child -> master pipe: one small JSON object per line.

Each message is written with a single write() of at most PIPE_BUF bytes, so it is
atomic: the master never sees half a message, even from a child killed mid-write.
The master drains a dead child's pipe before settling its jobs, so a `started`
written just before the child died is never missed.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import select
from dataclasses import dataclass
from enum import StrEnum

#: Linux's PIPE_BUF: writes up to this size are atomic.
MAX_MESSAGE_BYTES = 4096
#: A job name longer than this is cut in reports (titles, logs); the job runs anyway.
MAX_NAME_CHARS = 512


class Kind(StrEnum):
    READY = "ready"        # the child is set up and about to reserve
    ALIVE = "alive"        # liveness while idle
    STARTED = "started"    # handle() is about to run: id, job, timeout_s, queue, attempt,
                           # wait_s (first attempts only)
    FINISHED = "finished"  # an attempt ended: id, outcome, duration_s, queue
    LEAVING = "leaving"    # the child exits on its own after this: reason


@dataclass(frozen=True, slots=True)
class Report:
    kind: Kind
    fields: dict[str, object]

    def text(self, key: str) -> str:
        return str(self.fields.get(key, ""))

    def number(self, key: str) -> float:
        value = self.fields.get(key, 0)
        return float(value) if isinstance(value, int | float) else 0.0


class ReportWriter:
    """The child's end. Never raises: a master that is gone is noticed elsewhere."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def send(self, kind: Kind, **fields: object) -> None:
        line = json.dumps({"k": str(kind), **fields}, separators=(",", ":")) + "\n"
        data = line.encode("utf-8", "replace")
        if len(data) > MAX_MESSAGE_BYTES:  # only a huge job name gets here
            data = (json.dumps({"k": str(kind), "id": fields.get("id")}) + "\n").encode()
        with contextlib.suppress(OSError):
            os.write(self.fd, data)


class ReportReader:
    """The master's end of one child's pipe (non-blocking)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._buffer = b""
        os.set_blocking(fd, False)

    def read(self) -> list[Report]:
        """Every complete message available now; [] when there is none."""
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                break
            if not chunk:
                break
            self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        return [report for line in lines if (report := _parse(line)) is not None]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


def readable(fds: list[int], timeout_s: float) -> list[int]:
    """The fds among `fds` with data (or EOF), waiting at most `timeout_s`."""
    try:
        ready, _, _ = select.select(fds, [], [], max(0.0, timeout_s))
    except (OSError, ValueError):
        return []
    return ready


def _parse(line: bytes) -> Report | None:
    try:
        message = json.loads(line)
        kind = Kind(message.pop("k"))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None  # a garbled line is dropped; liveness covers the rest
    return Report(kind, message)
