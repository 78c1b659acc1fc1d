"""What every suite does: empty the store, push a backlog in bulk, run `chappyd` over it
and read the jobs' records.

Drains run `chappyd --workers=N --max-jobs-per-child=0 --stop-when-empty` (no recycling:
the hot path alone). wall = jobs / (last job finished - spawn), start-up included;
steady = (jobs - 1) / (last finished - first finished).
"""

from __future__ import annotations

import os
import resource
import struct
import time
from dataclasses import dataclass
from pathlib import Path

from bench.harness.daemon import Daemon, daemon_environ
from bench.harness.stores import Store
from bench.jobs import RECORD
from chappyd import Job
from chappyd.config import load_settings
from chappyd.manager import QueueManager

QUEUE = "bench"
BULK_BATCH = 1000
DRAIN_TIMEOUT_S = 3600.0


@dataclass(frozen=True)
class Record:
    kind: int
    sent: float
    started: float
    finished: float


@dataclass(frozen=True)
class Drain:
    jobs: int
    wall: float
    steady: float
    #: CPU per job, microseconds: chappyd (master and children, start-up included) and
    #: the backend's server (0 for SQLite: its work is inside the children)
    daemon_cpu_us: float
    server_cpu_us: float


class Bench:
    def __init__(self, store: Store, run_dir: Path, repeats: int, quick: bool,
                 backlog_sizes: list[int] | None = None) -> None:
        self.store, self.run_dir, self.repeats, self.quick = store, run_dir, repeats, quick
        self.backlog_sizes = backlog_sizes
        self.config = run_dir / "empty.env"
        self.config.write_text("")
        self.records = run_dir / "records.bin"
        self.qm: QueueManager | None = None

    # -- the store -------------------------------------------------------------
    def fresh(self) -> QueueManager:
        """An empty store and a QueueManager connected to it; no records yet."""
        self.close()
        self.store.reset()
        settings = load_settings(environ={"CHAPPY_CONFIG": str(self.config),
                                          **self.store.env()})
        self.qm = QueueManager(settings)
        self.qm.driver.migrate()
        self.records.unlink(missing_ok=True)
        self.records.write_bytes(b"")
        return self.qm

    def close(self) -> None:
        if self.qm is not None:
            self.qm.close()
            self.qm = None

    def push_backlog(self, job: type[Job], count: int, qm: QueueManager) -> float:
        """`count` jobs through push_many in batches of BULK_BATCH; seconds taken."""
        payload = job({}).to_payload()
        started = time.perf_counter()
        for start in range(0, count, BULK_BATCH):
            qm.push_many(QUEUE, [payload] * min(BULK_BATCH, count - start))
        return time.perf_counter() - started

    # -- the daemon --------------------------------------------------------------
    def daemon(self, *flags: str, records: Path | None = None) -> Daemon:
        env = daemon_environ(self.store.env(), self.config, records or self.records)
        return Daemon(env, list(flags), self.run_dir)

    def drain(self, job: type[Job], count: int, workers: int) -> Drain:
        """A backlog of `count` jobs, drained by `chappyd --workers=workers`."""
        qm = self.fresh()
        self.push_backlog(job, count, qm)
        return self.drain_pushed(count, workers)

    def drain_pushed(self, count: int, workers: int) -> Drain:
        server_cpu, daemon_cpu = self.store.server_cpu_s(), _reaped_cpu_s()
        with self.daemon(f"--workers={workers}", "--max-jobs-per-child=0",
                         "--stop-when-empty") as daemon:
            daemon.wait(DRAIN_TIMEOUT_S)
        daemon_cpu = _reaped_cpu_s() - daemon_cpu
        server_cpu = self.store.server_cpu_s() - server_cpu
        finished = sorted(r.finished for r in self.read_records())
        if len(finished) != count:
            raise RuntimeError(f"{len(finished)} jobs ran, {count} were pushed")
        return Drain(count, count / (finished[-1] - daemon.spawned),
                     (count - 1) / (finished[-1] - finished[0]),
                     daemon_cpu / count * 1e6, server_cpu / count * 1e6)

    def read_records(self, path: Path | None = None) -> list[Record]:
        data = (path or self.records).read_bytes()
        return [Record(int(k), s, b, f) for k, s, b, f in
                RECORD.iter_unpack(data[: len(data) // RECORD.size * RECORD.size])]

    def record_count(self) -> int:
        return os.stat(self.records).st_size // RECORD.size


def _reaped_cpu_s() -> float:
    """CPU of this process's reaped descendants: chappyd reaps its children, we reap it."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def read_one(fd: int) -> Record:
    """One record from a FIFO the jobs write to (32 bytes arrive in one piece)."""
    data = os.read(fd, RECORD.size)
    if len(data) != RECORD.size:
        raise RuntimeError(f"a short record from the FIFO: {len(data)} bytes")
    kind, sent, started, finished = struct.unpack("<4d", data)
    return Record(int(kind), sent, started, finished)
