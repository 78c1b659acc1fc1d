"""A job module whose import breaks every forked child (an at-fork hook that exits):
the master must back off and give up, not fork in a hot loop."""

from __future__ import annotations

import os

from chappyd.jobs import Job

os.register_at_fork(after_in_child=lambda: os._exit(3))


class Never(Job):
    def handle(self) -> None:
        pass
