"""Jobs whose outcomes the metrics tests count."""

from __future__ import annotations

from chappyd.jobs import Job


class Quick(Job):
    """Succeeds at once."""

    def handle(self) -> None:
        pass


class FailsOnce(Job):
    """Raises on its first attempt, succeeds on the retry (no backoff)."""

    tries = 2

    def backoff(self) -> int:
        return 0

    def handle(self) -> None:
        if self.attempts == 1:
            raise RuntimeError("first attempt fails")


class AlwaysFails(Job):
    """Raises every time; one attempt only."""

    tries = 1

    def handle(self) -> None:
        raise RuntimeError("always fails")
