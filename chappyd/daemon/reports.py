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
from json.encoder import encode_basestring_ascii as _quote
from json.scanner import make_scanner
from math import isfinite
from typing import Any

#: Linux's PIPE_BUF: writes up to this size are atomic.
MAX_MESSAGE_BYTES = 4096
#: A job name longer than this is cut in reports (titles, logs); the job runs anyway.
MAX_NAME_CHARS = 512
#: The master reads a pipe in chunks of this size.
_READ_BYTES = 65536


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
        self._write(kind, fields.get("id"), line.encode("utf-8", "replace"))

    # STARTED and FINISHED go once a job each: the lines send() would write, byte for
    # byte, put together without json.dumps (6 -> 1.5 us each). The strings are
    # quoted by json's own C function (ASCII only, as send()'s); a NaN or an infinite
    # float (json writes NaN, Infinity; repr() would not) goes through send() itself.
    def started(self, job_id: str, job: str, timeout_s: float, queue: str, attempt: int,
                wait_s: float | None) -> None:
        if not (isfinite(timeout_s) and (wait_s is None or isfinite(wait_s))):
            self.send(Kind.STARTED, id=job_id, job=job, timeout_s=timeout_s, queue=queue,
                      attempt=attempt, wait_s=wait_s)
            return
        wait = "null" if wait_s is None else repr(wait_s)
        line = (f'{{"k":"started","id":{_quote(job_id)},"job":{_quote(job)},'
                f'"timeout_s":{timeout_s!r},"queue":{_quote(queue)},"attempt":{attempt!r},'
                f'"wait_s":{wait}}}\n')
        self._write(Kind.STARTED, job_id, line.encode())

    def finished(self, job_id: str, outcome: str, duration_s: float, queue: str) -> None:
        if not isfinite(duration_s):
            self.send(Kind.FINISHED, id=job_id, outcome=outcome, duration_s=duration_s,
                      queue=queue)
            return
        line = (f'{{"k":"finished","id":{_quote(job_id)},"outcome":{_quote(outcome)},'
                f'"duration_s":{duration_s!r},"queue":{_quote(queue)}}}\n')
        self._write(Kind.FINISHED, job_id, line.encode())

    def _write(self, kind: Kind, job_id: object, data: bytes) -> None:
        if len(data) > MAX_MESSAGE_BYTES:  # only a huge job name gets here
            data = (json.dumps({"k": str(kind), "id": job_id}) + "\n").encode()
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
                chunk = os.read(self.fd, _READ_BYTES)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                break
            if not chunk:
                break
            self._buffer += chunk
            if len(chunk) < _READ_BYTES:
                # a pipe's read returns all it holds: it is empty now, and asking
                # again only to hear so costs a syscall and an exception a turn
                break
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


_KINDS = {kind.value: kind for kind in Kind}  # a dict lookup, not Kind(...): 0.3 us a line
_scan = make_scanner(json.JSONDecoder())


def _parse(line: bytes) -> Report | None:
    try:
        message = _decoded(line)
        kind = _KINDS[message.pop("k")]
    except (ValueError, KeyError, TypeError, AttributeError):
        return None  # a garbled line is dropped; liveness covers the rest
    return Report(kind, message)


def _decoded(line: bytes) -> Any:
    """json.loads(line), for every line. One as ReportWriter writes it (an object,
    nothing around it) is decoded by json's scanner alone, without json.loads'
    encoding detection and blank stripping (2.9 -> 1.4 us); any other line gets
    json.loads' own answer, or its error."""
    try:
        text = line.decode()
        value, end = _scan(text, 0)
        if end == len(text):
            return value
    except (ValueError, StopIteration):
        pass
    return json.loads(line)
