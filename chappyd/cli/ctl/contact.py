"""Bounding the first contact with a backend, so that a backend that is down or
silent is reported within docs/design.md §7's 10 s whatever the driver's own timeouts are.

The call runs in a daemon thread that the caller stops waiting for: a signal-based
alarm cannot interrupt a call blocked in C (getaddrinfo, libpq, SQLite's busy wait),
a thread join can. Only the first call is bounded: after the backend has answered
once, long operations (flush of 100k jobs) run as long as they need.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from chappyd.errors import BackendUnavailable

T = TypeVar("T")

#: The first answer must come within this; with Python's start-up it stays under 10 s.
CONTACT_TIMEOUT_S = 7.0


def within_deadline(call: Callable[[], T], backend: str,
                    timeout_s: float = CONTACT_TIMEOUT_S) -> T:
    """Run `call`, raising BackendUnavailable naming `backend` if it has not returned
    within `timeout_s`. Its own exceptions propagate unchanged."""
    outcome: list[T] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:  # handed to the waiting thread, re-raised there
            failure.append(exc)

    worker = threading.Thread(target=target, name="chappyctl-contact", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        # the thread is abandoned: it dies with the process, which is about to exit
        raise BackendUnavailable(backend, f"no answer within {timeout_s:g} s")
    if failure:
        raise failure[0]
    return outcome[0]
