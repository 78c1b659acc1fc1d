"""CHAPPY_METRICS in the master: feeds Metrics (metrics.py) from what the master
sees, and serves them (metrics_server.py) from the master's own loop.

The master creates an Observer only when CHAPPY_METRICS is set and imports this
module only then: without it, no prometheus_client, no socket, no work per report.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from chappyd.daemon.children import ChildProc, Doom
from chappyd.daemon.chores import Chore
from chappyd.daemon.metrics import Metrics
from chappyd.daemon.metrics_server import MetricsServer
from chappyd.daemon.reclaim import Settlement
from chappyd.daemon.reports import Report
from chappyd.errors import ConfigError

if TYPE_CHECKING:
    from chappyd.daemon.master import Master

#: How often the chore looks whether depths are due (metrics.DEPTHS_EVERY_S apart).
DEPTHS_CHECK_EVERY_S = 1.0
#: LEAVING reasons -> the child exit reason counted when it then exits cleanly.
LEFT_FOR = {"max_jobs": "recycled", "memory": "memory"}


class Observer:
    def __init__(self, master: Master) -> None:
        self.master = master
        self.address = master.settings.metrics_address
        self.source = master.settings.source("CHAPPY_METRICS")
        self.metrics = Metrics()
        self.server = MetricsServer(self.address, self.render)

    # -- the endpoint -----------------------------------------------------------------
    def bind(self) -> None:
        """Listen (and log metrics_listening); a port in use is a configuration error."""
        try:
            self.server.bind()
        except OSError as exc:
            raise ConfigError("CHAPPY_METRICS", self.address, self.source,
                              f"cannot listen there: {exc.strerror or exc}") from None

    def fds(self) -> list[int]:
        """For the loop's select, and to close in every forked child."""
        return self.server.fds()

    def serve(self, ready: list[int]) -> None:
        """After the loop's select: accept and read what is ready; every turn."""
        if ready:
            own = self.server.fds()
            for fd in ready:
                if fd in own:
                    self.server.handle_readable(fd)
        self.server.tick()

    def close(self) -> None:
        self.server.close()

    def render(self) -> bytes:
        """A scrape: workers and backend_up as they are now, never a turn old (a
        scrape right after a quick drain would see the children not ready yet)."""
        self.refresh_state()
        return self.metrics.exposition()

    # -- what children report -----------------------------------------------------------
    def started(self, report: Report) -> None:
        self.metrics.job_started(report.text("queue"), report.text("job"),
                                 optional_number(report, "wait_s"))

    def finished(self, child: ChildProc, report: Report) -> None:
        """FINISHED, before the master forgets the child's running job: its name labels
        the attempt (an attempt rejected before it started has none)."""
        job = child.job
        name = job.name if job is not None and job.id == report.text("id") else None
        self.metrics.job_finished(report.text("queue"), name, report.text("outcome"),
                                  optional_number(report, "duration_s"))

    def exited(self, child: ChildProc, status: int) -> None:
        reason = exit_reason(child, status)
        if reason is not None:
            self.metrics.child_exited(reason)

    def settled(self, item: Settlement, outcome: str) -> None:
        """A dead child's running job, settled by the master (reclaim.py)."""
        self.metrics.job_finished(item.queue, item.job_name or None, outcome, item.duration_s)

    # -- what the master knows ------------------------------------------------------------
    def chore(self) -> Chore:
        return Chore(lambda m: DEPTHS_CHECK_EVERY_S, self.refresh_depths)

    def refresh_depths(self, master: Master) -> bool:
        """The backend's counts, when due; none while it does not answer."""
        if not master.starting and self.metrics.depths_due(time.monotonic()):
            stats = master.link.call(lambda d: d.stats())
            if stats is None:
                self.metrics.clear_depths()
            else:
                self.metrics.set_depths(stats)
        return True

    def refresh_state(self) -> None:
        master = self.master
        children = master.pool.children.values()
        busy = sum(c.job is not None for c in children)
        idle = sum(c.ready and c.job is None and not c.retiring for c in children)
        self.metrics.set_workers(busy, idle)
        self.metrics.set_backend_up(master.link.outage_since is None and not master.starting)


def exit_reason(child: ChildProc, status: int) -> str | None:
    """What a child's end counts as; None for the ends the daemon asked for (a stop, a
    retirement on reload or TTOU)."""
    if child.doom is Doom.STOP:
        return None
    if child.doom is Doom.TIMEOUT:
        return "timeout"
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        return LEFT_FOR.get(child.left_for)
    return "crashed"


def optional_number(report: Report, key: str) -> float | None:
    value = report.fields.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
