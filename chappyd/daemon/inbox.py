"""The master's signal inbox: handlers only record, the loop acts (docs/design.md §6).

A handler appends the signal number to a queue and returns: no logging, no I/O, no
locks in signal context (gunicorn's SIGCHLD handler once logged there and could
deadlock, #3198). set_wakeup_fd makes the master's select() return at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections import deque
from types import FrameType

#: The signals the master acts on; SIGCHLD only wakes the loop to reap.
HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP,
                   signal.SIGTTIN, signal.SIGTTOU, signal.SIGTSTP, signal.SIGCONT,
                   signal.SIGUSR1, signal.SIGCHLD)


class SignalInbox:
    def __init__(self) -> None:
        self._queue: deque[int] = deque()
        self.wake_fd, self._wake_w = os.pipe()

    @property
    def fds(self) -> tuple[int, int]:
        """Both ends of the wake-up pipe: a child closes them."""
        return (self.wake_fd, self._wake_w)

    def install(self) -> None:
        for fd in self.fds:
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        for signum in HANDLED_SIGNALS:
            signal.signal(signum, self._record)

    def _record(self, signum: int, frame: FrameType | None) -> None:
        self._queue.append(signum)

    def __bool__(self) -> bool:
        return bool(self._queue)

    def drain(self) -> list[int]:
        """The signals received since the last call, in the order handled."""
        with contextlib.suppress(OSError):
            os.read(self.wake_fd, 4096)
        taken = []
        while self._queue:
            taken.append(self._queue.popleft())
        return taken

    def close(self) -> None:
        signal.set_wakeup_fd(-1)
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)
