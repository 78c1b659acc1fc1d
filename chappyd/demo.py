"""A demo job for `make run` and first tries: `CHAPPY_JOBS=chappyd.demo`."""

from __future__ import annotations

import structlog

from chappyd.jobs import Job

log = structlog.get_logger("chappyd.demo")


class Hello(Job):
    """Greets `data["name"]` in the log."""

    name = "chappyd.demo.Hello"

    def handle(self) -> None:
        log.info("hello", greeting=f"Hello, {self.data.get('name', 'world')}!",
                    job_id=self.job_id, attempt=self.attempts)
