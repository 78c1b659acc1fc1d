"""A job's time limit: JobTimeout raised in the main thread once the job has run its
`seconds` (SIGALRM). The master SIGKILLs a child whose job ignores it."""

from __future__ import annotations

import _signal
import signal
from types import FrameType
from typing import Any

from chappyd.errors import JobTimeout

#: signal.getsignal() turns the handler into an enum member if it can (~2 us); the C
#: function it wraps answers the one question asked per job, "still ours?", at once
_getsignal = _signal.getsignal
_SIGALRM = int(signal.SIGALRM)


class TimeLimit:
    """Raise JobTimeout in the main thread once a job has run its `seconds` (SIGALRM).
    The master SIGKILLs a child whose job ignores it.

    Worker.run() installs the handler once for all its jobs (hold), so a job costs
    two setitimer() calls, not two signal() calls more (~8 -> ~2 us). A job that
    installs a SIGALRM handler of its own gets ours back after it, and a SIGALRM
    between jobs goes where it went before run() (the handler found then), so every
    job's limit holds as when each job put back the handler it found."""

    def __init__(self) -> None:
        self._handler = self._expired  # one bound method: `is` tells it from a job's
        self._held = False
        self._armed = False
        self._previous: Any = signal.SIG_DFL
        self.seconds, self.job_name = 0.0, ""

    def hold(self) -> None:
        try:
            self._previous = signal.signal(signal.SIGALRM, self._handler)
        except ValueError:
            return  # not the main thread: each job tries on its own, as before
        self._held = True

    def let_go(self) -> None:
        if self._held:
            self._held = False
            signal.signal(signal.SIGALRM, self._previous)

    def __call__(self, seconds: float, job_name: str) -> TimeLimit:
        self.seconds, self.job_name = seconds, job_name
        return self

    def _expired(self, signum: int, frame: FrameType | None) -> None:
        if self._armed:
            raise JobTimeout(f"{self.job_name} exceeded its timeout of {self.seconds:g} s")
        previous = self._previous  # not a job's limit: what SIGALRM did before hold()
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_DFL:
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)

    def __enter__(self) -> None:
        if not self._held:
            self._previous = signal.signal(signal.SIGALRM, self._handler)
        self._armed = True
        signal.setitimer(signal.ITIMER_REAL, self.seconds)

    def __exit__(self, *exc_info: object) -> None:
        try:
            # disarmed first: a SIGALRM still due here is this job's JobTimeout
            signal.setitimer(signal.ITIMER_REAL, 0)
        finally:
            self._armed = False
            if not self._held:
                signal.signal(signal.SIGALRM, self._previous)
            elif _getsignal(_SIGALRM) is not self._handler:  # the job installed its own
                signal.signal(signal.SIGALRM, self._handler)
