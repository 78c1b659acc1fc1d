"""Jobs for the chappyctl tests: registered with CHAPPY_JOBS=tests.e2e.ctl_jobs."""

from __future__ import annotations

from chappyd import Job


class Mail(Job):
    queue = "emails"
    tries = 5

    def handle(self) -> None:
        pass


class Php(Job):
    name = "App\\Jobs\\SendWelcomeEmail"

    def handle(self) -> None:
        pass
