"""A job class whose schedule is invalid: chappyd must refuse it at start (78)."""

from __future__ import annotations

from chappyd.jobs import Job


class BadMinute(Job):
    schedule = "61 * * * *"

    def handle(self) -> None:
        raise AssertionError("never runs")
