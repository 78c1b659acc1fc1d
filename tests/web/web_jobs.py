"""Job classes for the dashboard's schedules page."""

from __future__ import annotations

from chappyd import Job


class NightlyReport(Job):
    queue = "reports"
    schedule = "30 2 * * *"

    def handle(self) -> None:
        pass


class Unscheduled(Job):
    def handle(self) -> None:
        pass
