"""How many jobs a worker claims at once, for the drivers whose claims cost a round
trip or a write transaction (PostgreSQL, SQLite; Redis sizes its own by time).

Batching pays for short jobs: a claim of 30 rows costs the worker and the backend
about what a claim of one does (measured on PostgreSQL: 200 us of worker CPU per no-op
job at batch 1, 86 us at 30; on SQLite a 20k drain spent 354 us of CPU per job at
batch 1 and 190 at 16). For long jobs it would only hoard: jobs wait behind a long
one in this child while another child idles (the give-back in prefetch.py bounds
that), and a job of a higher-priority queue waits behind the batch. So the size
follows the job time measured between claims, and stays 1 for jobs of BUDGET_S or
more.
"""

from __future__ import annotations

import time

#: Start small, hold at most about this much work ahead, cap the size.
START = 4
BUDGET_S = 0.020
MAX = 32


class BatchedClaims:
    """The `prefetch` of a driver whose claims are sized by a BatchSizer (`_batches`)."""

    _batches: BatchSizer

    @property
    def prefetch(self) -> int:
        """How many jobs the worker should reserve at once: adapts to job length."""
        return self._batches.size

    @prefetch.setter
    def prefetch(self, size: int) -> None:
        """Pin the batch size (benchmarks compare sizes this way)."""
        self._batches.pin(size)


class BatchSizer:
    """The claim batch size: as many jobs as take about BUDGET_S to run."""

    def __init__(self) -> None:
        self.size = START
        self._pinned = False
        self._since: float | None = None
        self._last = 0

    def pin(self, size: int) -> None:
        self.size, self._pinned = max(1, size), True

    def claimed(self, count: int) -> None:
        """Called at each claim; the jobs of the previous one have run meanwhile (the
        worker claims again only when its batch is done)."""
        now = time.monotonic()
        if not self._pinned and self._since is not None and self._last > 0:
            per_job_s = (now - self._since) / self._last
            wanted = int(BUDGET_S / per_job_s) if per_job_s > 0 else MAX
            self.size = max(1, min(MAX, wanted))
        # a claim that found nothing is followed by a wait: no job time to learn from
        self._since, self._last = now, count
